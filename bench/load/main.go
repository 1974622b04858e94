// Command load times announces against a BitTorrent tracker on loopback:
// HTTP with keep-alive or with Connection: close, or UDP (BEP 15).
//
//	load -target http://127.0.0.1:6881/announce -peers 100000 -torrents 10000 -load -dur 5s
//	load -target http://127.0.0.1:6881/announce -close -dur 5s
//	load -target udp://127.0.0.1:6881 -dur 5s
//
// The announces are package workload's: request i is always the same peer
// of the same torrent. With -load, requests 1 to -peers are sent once each
// first, so that the tracker then holds -peers distinct peers; the timed
// phase (-dur) then cycles through the same requests, re-announcing them,
// from -conns connections (or sockets) that each wait for an answer before
// the next request (UDP: -window requests in flight per socket).
//
// Each phase prints one line of key=value pairs: the answers per second,
// the latency percentiles (from the request's write, or from the dial with
// -close, to its whole answer), the answers that were failures (an HTTP
// status other than 200, a bencoded failure reason, a UDP error action),
// and the errors (refused or broken connections, timeouts, UDP answers lost).
// Only loopback addresses are accepted as targets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on the flags: a benchmark run stays finite.
const (
	maxPeers    = 100_000_000
	maxConns    = 10_000
	maxWindow   = 1024
	maxDuration = time.Hour
)

// options are the command line's settings.
type options struct {
	target   *url.URL
	addr     netip.AddrPort // the target's resolved loopback address
	peers    int
	torrents int
	conns    int
	close    bool
	numwant  int
	window   int
	mmsg     bool
	timeout  time.Duration
	lost     time.Duration
}

func main() {
	var o options
	target := flag.String("target", "", "tracker: http://127.0.0.1:PORT/announce or udp://127.0.0.1:PORT (loopback only)")
	flag.IntVar(&o.peers, "peers", 100_000, "distinct peers: the requests cycled through")
	flag.IntVar(&o.torrents, "torrents", 10_000, "distinct info_hashes the peers announce to")
	load := flag.Bool("load", false, "first announce each of the -peers peers once")
	loadMax := flag.Duration("load-max", 10*time.Minute, "longest the -load phase may take")
	dur := flag.Duration("dur", 5*time.Second, "length of the timed phase (0: none)")
	flag.IntVar(&o.conns, "conns", 0, "connections (HTTP) or sockets (UDP) (0: 64 for HTTP, 16 for UDP)")
	flag.BoolVar(&o.close, "close", false, "HTTP: a new connection per announce, with Connection: close")
	flag.IntVar(&o.numwant, "numwant", 50, "numwant of every announce")
	flag.IntVar(&o.window, "window", 32, "UDP: announces in flight per socket, sent as one batch")
	flag.BoolVar(&o.mmsg, "mmsg", true, "UDP: send and receive batches with sendmmsg/recvmmsg (Linux)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "HTTP: longest wait for an answer")
	flag.DurationVar(&o.lost, "lost", 200*time.Millisecond, "UDP: wait for a batch's answers, after which the rest count as lost")
	flag.Parse()
	if err := o.check(*target, *dur, *loadMax); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	if *load {
		t := run(&o, &phase{once: true, peers: int64(o.peers), deadline: time.Now().Add(*loadMax)})
		fmt.Println(t.report("load", &o))
		if t.answered() < uint64(o.peers) {
			fmt.Fprintf(os.Stderr, "load: only %d of %d peers answered in the load phase\n", t.answered(), o.peers)
			os.Exit(1)
		}
	}
	if *dur > 0 {
		t := run(&o, &phase{peers: int64(o.peers), deadline: time.Now().Add(*dur)})
		fmt.Println(t.report("timed", &o))
		if t.answered() == 0 {
			os.Exit(1)
		}
	}
}

// check validates the options and resolves the target.
func (o *options) check(target string, dur, loadMax time.Duration) error {
	if target == "" {
		return errors.New("-target is required")
	}
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("-target: %v", err)
	}
	switch u.Scheme {
	case "http":
		if u.Path == "" {
			u.Path = "/announce"
		}
	case "udp":
		if o.close {
			return errors.New("-close applies to HTTP targets only")
		}
		if len(u.RequestURI()) > 255 && u.Path != "" {
			return fmt.Errorf("-target: %q: a UDP target's path (BEP 41 URL data) must be at most 255 bytes", target)
		}
	default:
		return fmt.Errorf("-target: %q: the scheme must be http or udp", target)
	}
	if o.addr, err = resolveLoopback(u); err != nil {
		return fmt.Errorf("-target: %v", err)
	}
	o.target = u
	if o.conns == 0 {
		o.conns = 64
		if u.Scheme == "udp" {
			o.conns = 16
		}
	}
	for _, b := range []struct {
		name      string
		v, lo, hi int
	}{
		{"-peers", o.peers, 1, maxPeers},
		{"-torrents", o.torrents, 1, maxPeers},
		{"-conns", o.conns, 1, maxConns},
		{"-window", o.window, 1, maxWindow},
		{"-numwant", o.numwant, 0, 1 << 16},
	} {
		if b.v < b.lo || b.v > b.hi {
			return fmt.Errorf("%s %d: must be from %d to %d", b.name, b.v, b.lo, b.hi)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-dur", dur}, {"-load-max", loadMax}, {"-timeout", o.timeout}, {"-lost", o.lost}} {
		if d.v < 0 || d.v > maxDuration {
			return fmt.Errorf("%s %v: must be from 0 to %v", d.name, d.v, maxDuration)
		}
	}
	if o.timeout == 0 || o.lost == 0 {
		return errors.New("-timeout and -lost must be positive")
	}
	return nil
}

// resolveLoopback returns the address to dial for u, refusing any host that
// is or resolves to an address other than a loopback one.
func resolveLoopback(u *url.URL) (netip.AddrPort, error) {
	port, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: needs a port from 1 to 65535", u.Host)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", u.Hostname())
	if err != nil {
		return netip.AddrPort{}, err
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return netip.AddrPort{}, fmt.Errorf("%q: %v is not a loopback address; only loopback targets are allowed", u.Host, a)
		}
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(port)), nil
}

// A phase hands out request numbers to the workers until it is over.
type phase struct {
	next     atomic.Int64
	once     bool // the load phase: requests 1 to peers, once each
	peers    int64
	deadline time.Time
}

// take returns the next request number; false when the load phase has
// handed out all of its requests.
func (p *phase) take() (int, bool) {
	n := p.next.Add(1)
	if p.once {
		return int(n), n <= p.peers
	}
	return int((n-1)%p.peers + 1), true
}

func (p *phase) over(now time.Time) bool { return now.After(p.deadline) }

// tally is what a worker counted; the workers' tallies are summed at the
// end, so that they share nothing while they run.
type tally struct {
	ok, failed, errors uint64
	bytes              uint64 // of the answers, ok or failed
	lat                hist   // of the answers, ok or failed
	elapsed            time.Duration
	firstErr           error
}

func (t *tally) answered() uint64 { return t.ok + t.failed }

func (t *tally) answer(failed bool, size int, d time.Duration) {
	if failed {
		t.failed++
	} else {
		t.ok++
	}
	t.bytes += uint64(size)
	t.lat.add(d)
}

func (t *tally) error(err error) {
	t.errors++
	if t.firstErr == nil {
		t.firstErr = err
	}
}

func (t *tally) merge(o *tally) {
	t.ok += o.ok
	t.failed += o.failed
	t.errors += o.errors
	t.bytes += o.bytes
	t.lat.merge(&o.lat)
	if t.firstErr == nil {
		t.firstErr = o.firstErr
	}
}

// report is the phase's one line of key=value pairs.
func (t *tally) report(name string, o *options) string {
	mode := o.target.Scheme
	switch {
	case mode == "http" && o.close:
		mode = "close"
	case mode == "http":
		mode = "keepalive"
	}
	secs := t.elapsed.Seconds()
	perResp := uint64(0)
	if n := t.answered(); n > 0 {
		perResp = t.bytes / n
	}
	ms := func(q float64) string { return strconv.FormatFloat(float64(t.lat.quantile(q))/1e6, 'f', 3, 64) }
	line := fmt.Sprintf("%s: mode=%s conns=%d requests=%d secs=%.2f rps=%.0f failed=%d errors=%d bytes_per_resp=%d p50_ms=%s p90_ms=%s p99_ms=%s p999_ms=%s",
		name, mode, o.conns, t.answered()+t.errors, secs, float64(t.answered())/secs, t.failed, t.errors, perResp,
		ms(0.5), ms(0.9), ms(0.99), ms(0.999))
	if t.firstErr != nil {
		line += fmt.Sprintf(" first_error=%q", t.firstErr.Error())
	}
	return line
}

// A worker sends announces, one connection's or socket's worth, until its
// phase is over.
type worker interface {
	work(p *phase, t *tally)
}

// run runs one phase with o.conns workers and returns their sum.
func run(o *options, p *phase) *tally {
	tallies := make([]tally, o.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for n := range tallies {
		var w worker
		if o.target.Scheme == "udp" {
			w = newUDPWorker(o, n)
		} else {
			w = newHTTPWorker(o)
		}
		wg.Go(func() { w.work(p, &tallies[n]) })
	}
	wg.Wait()
	var sum tally
	for n := range tallies {
		sum.merge(&tallies[n])
	}
	sum.elapsed = time.Since(start)
	return &sum
}
