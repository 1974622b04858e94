// Command run is the project's announce benchmark, run from the project
// root (make bench):
//
//	go run ./bench/run
//	PEERS=1000000 TORRENTS=100000 DUR=6 ROUNDS=3 go run ./bench/run
//
// It builds the tracker (bin/chihaya) and the load generator (bench/load),
// starts the tracker on loopback with CONFIG (its addr, admin_addr and, when
// the configuration knows the key, udp_addr overridden to free ports, and
// private_tracker off), loads PEERS distinct peers over TORRENTS torrents,
// and reads the resident memory the tracker gained per stored peer (RSS
// from /proc, peers from the admin server's /stats). It then times DUR
// seconds of announces of the same peers ROUNDS times, in turn: HTTP with
// keep-alive, HTTP with Connection: close, and UDP (BEP 15) when the
// tracker has a UDP frontend; and prints each run, the medians, and a last
// line that sums them up for scripts.
//
// Environment (defaults in brackets):
//
//	PEERS [100000]          distinct peers loaded, then re-announced
//	TORRENTS [10000]        distinct info_hashes they announce to
//	DUR [4]                 seconds per timed run
//	ROUNDS [3]              rounds of timed runs; medians are reported
//	CONNS [64]              HTTP connections (UDP: 16 sockets, 32 announces in flight each)
//	CONFIG [example.json]   the configuration to start from
//	UDP [auto]              0: no UDP runs even when the tracker has a UDP frontend
//	OPENTRACKER [0]         1: also load and time opentracker (Debian's package,
//	                        which must be installed), and print ratios against it
//	CEILING [0]             1: also time bench/ceiling, a net/http server that does no
//	                        tracker work, and print ratios against it
//
// Figures from a shared machine vary between runs; compare ratios taken in
// the same run, not absolute numbers from different ones.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chihaya/chihaya/config"
)

// settings are the environment's.
type settings struct {
	peers, torrents, rounds, conns int
	dur                            time.Duration
	config                         string
	udp, opentracker, ceiling      bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func readSettings() (*settings, error) {
	s := &settings{config: "example.json", udp: configKnows("udp_addr")}
	if v := os.Getenv("CONFIG"); v != "" {
		s.config = v
	}
	ints := []struct {
		name    string
		v       *int
		def, hi int
	}{
		{"PEERS", &s.peers, 100_000, 100_000_000},
		{"TORRENTS", &s.torrents, 10_000, 100_000_000},
		{"ROUNDS", &s.rounds, 3, 100},
		{"CONNS", &s.conns, 64, 10_000},
	}
	for _, e := range ints {
		*e.v = e.def
		if v := os.Getenv(e.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > e.hi {
				return nil, fmt.Errorf("%s=%q: want a whole number from 1 to %d", e.name, v, e.hi)
			}
			*e.v = n
		}
	}
	s.dur = 4 * time.Second
	if v := os.Getenv("DUR"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			d, err = time.ParseDuration(v + "s")
		}
		if err != nil || d <= 0 || d > time.Hour {
			return nil, fmt.Errorf("DUR=%q: want seconds (or a duration such as 1m), at most an hour", v)
		}
		s.dur = d
	}
	switch v := os.Getenv("UDP"); v {
	case "", "auto":
	case "0":
		s.udp = false
	default:
		return nil, fmt.Errorf("UDP=%q: want 0 (off) or auto", v)
	}
	for _, e := range []struct {
		name string
		v    *bool
	}{{"OPENTRACKER", &s.opentracker}, {"CEILING", &s.ceiling}} {
		switch v := os.Getenv(e.name); v {
		case "", "0":
		case "1":
			*e.v = true
		default:
			return nil, fmt.Errorf("%s=%q: want 0 or 1", e.name, v)
		}
	}
	return s, nil
}

// configKnows reports whether the tracker's configuration has the JSON key.
func configKnows(key string) bool {
	t := reflect.TypeFor[config.Config]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name == key {
			return true
		}
	}
	return false
}

// A target is one server and way of announcing, timed ROUNDS times.
type target struct {
	name string
	args []string // the load generator's
	runs []result
}

func run(ctx context.Context) error {
	s, err := readSettings()
	if err != nil {
		return err
	}
	if _, err := os.Stat("cmd/chihaya"); err != nil {
		return errors.New("run from the project root (make bench): no cmd/chihaya here")
	}
	work, err := os.MkdirTemp("", "chihaya-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	goCmd := cmp.Or(os.Getenv("GO"), "go")
	fmt.Println("building bin/chihaya, bench/load and bench/ceiling ...")
	loadBin := filepath.Join(work, "load")
	ceilingBin := filepath.Join(work, "ceiling")
	for _, b := range [][]string{{"-o", "bin/chihaya", "./cmd/chihaya"}, {"-o", loadBin, "./bench/load"}, {"-o", ceilingBin, "./bench/ceiling"}} {
		cmd := exec.CommandContext(ctx, goCmd, append([]string{"build"}, b...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", b[len(b)-1], err)
		}
	}
	load := func(args ...string) (result, error) {
		return runLoad(ctx, loadBin, append([]string{"-peers", strconv.Itoa(s.peers), "-torrents", strconv.Itoa(s.torrents)}, args...))
	}

	tr, err := startTracker(ctx, s, work)
	if err != nil {
		return err
	}
	defer tr.stop()
	if s.udp && !answersConnect(tr.udpURL) {
		fmt.Printf("no UDP runs: the tracker does not answer BEP 15 connects on %s (a build without its UDP frontend?)\n", tr.udpURL)
		s.udp = false
	} else if !s.udp {
		if configKnows("udp_addr") {
			fmt.Println("UDP=0: no UDP runs")
		} else {
			fmt.Println("no UDP runs: the tracker's configuration has no udp_addr (no UDP frontend)")
		}
	}

	var ot *server
	if s.opentracker {
		if ot, err = startOpentracker(ctx, s, work); err != nil {
			return err
		}
		defer ot.stop()
	}

	var ce *server
	if s.ceiling {
		addr, err := freePort("tcp")
		if err != nil {
			return err
		}
		if ce, err = start(exec.CommandContext(ctx, ceilingBin, "-addr", addr), filepath.Join(work, "ceiling.log"), addr); err != nil {
			return err
		}
		defer ce.stop()
		ce.httpURL = "http://" + addr + "/announce"
	}

	fmt.Printf("loading %d peers over %d torrents ...\n", s.peers, s.torrents)
	conns := strconv.Itoa(s.conns)
	trMem, err := fill(tr, "tracker", func() (result, error) {
		return load("-target", tr.httpURL, "-load", "-dur", "0", "-conns", conns)
	})
	if err != nil {
		return err
	}
	var otMem memory
	if ot != nil {
		// opentracker closes every HTTP connection: it is loaded and timed with Connection: close.
		if otMem, err = fill(ot, "opentracker", func() (result, error) {
			return load("-target", ot.httpURL, "-load", "-dur", "0", "-close", "-conns", conns)
		}); err != nil {
			return err
		}
	}
	fmt.Println()
	fmt.Printf("%-22s %10s %10s %12s\n", "memory", "peers", "RSS MiB", "bytes/peer")
	fmt.Printf("%-22s %10d %10d %12d\n", "tracker", trMem.peers, trMem.rss>>20, trMem.perPeer)
	if ot != nil {
		fmt.Printf("%-22s %10d %10d %12d\n", "opentracker", otMem.peers, otMem.rss>>20, otMem.perPeer)
	}

	dur := s.dur.String()
	targets := []*target{
		{name: "tracker keep-alive", args: []string{"-target", tr.httpURL, "-conns", conns}},
		{name: "tracker close", args: []string{"-target", tr.httpURL, "-conns", conns, "-close"}},
	}
	if s.udp {
		targets = append(targets, &target{name: "tracker udp", args: []string{"-target", tr.udpURL}})
	}
	if ot != nil {
		targets = append(targets,
			&target{name: "opentracker close", args: []string{"-target", ot.httpURL, "-conns", conns, "-close"}},
			&target{name: "opentracker udp", args: []string{"-target", ot.udpURL}})
	}
	if ce != nil {
		targets = append(targets,
			&target{name: "ceiling keep-alive", args: []string{"-target", ce.httpURL, "-conns", conns}},
			&target{name: "ceiling close", args: []string{"-target", ce.httpURL, "-conns", conns, "-close"}})
	}
	fmt.Println()
	fmt.Printf("%-30s %9s %8s %8s %8s %8s %7s %7s\n", "announces", "req/s", "p50 ms", "p90 ms", "p99 ms", "p999 ms", "failed", "errors")
	for round := 1; round <= s.rounds; round++ {
		for _, t := range targets {
			r, err := load(append(t.args, "-dur", dur)...)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", t.name, round, err)
			}
			t.runs = append(t.runs, r)
			fmt.Printf("%-30s %s\n", fmt.Sprintf("%s (round %d)", t.name, round), r.row())
		}
	}
	fmt.Println()
	med := make(map[string]result)
	for _, t := range targets {
		m := median(t.runs)
		med[t.name] = m
		fmt.Printf("%-30s %s\n", t.name+" (median)", m.row())
	}

	alive := "ok"
	if !tr.alive() {
		alive = "DIED"
	}
	var sum strings.Builder
	fmt.Fprintf(&sum, "summary: keepalive_rps=%.0f close_rps=%.0f", med["tracker keep-alive"].rps, med["tracker close"].rps)
	if s.udp {
		fmt.Fprintf(&sum, " udp_rps=%.0f", med["tracker udp"].rps)
	}
	fmt.Fprintf(&sum, " keepalive_p99_ms=%.3f", med["tracker keep-alive"].p99)
	if s.udp {
		fmt.Fprintf(&sum, " udp_p99_ms=%.3f", med["tracker udp"].p99)
	}
	var failed, errs int64
	for _, t := range targets {
		if !strings.HasPrefix(t.name, "tracker ") {
			continue
		}
		for _, r := range t.runs {
			failed += r.failed
			errs += r.errors
		}
	}
	fmt.Fprintf(&sum, " failed=%d errors=%d bytes_per_peer=%d peers=%d/%d tracker=%s", failed, errs, trMem.perPeer, trMem.peers, s.peers, alive)
	if ot != nil {
		otClose := med["opentracker close"].rps
		fmt.Fprintf(&sum, " keepalive/opentracker=%s close/opentracker=%s", ratio(med["tracker keep-alive"].rps, otClose), ratio(med["tracker close"].rps, otClose))
		if s.udp {
			fmt.Fprintf(&sum, " udp/opentracker_udp=%s", ratio(med["tracker udp"].rps, med["opentracker udp"].rps))
		}
		fmt.Fprintf(&sum, " bytes_per_peer/opentracker=%s (%d) opentracker_peers=%d opentracker_udp_rps=%.0f", ratio(float64(trMem.perPeer), float64(otMem.perPeer)), otMem.perPeer, otMem.peers, med["opentracker udp"].rps)
	}
	if ce != nil {
		fmt.Fprintf(&sum, " keepalive/ceiling=%s close/ceiling=%s", ratio(med["tracker keep-alive"].rps, med["ceiling keep-alive"].rps), ratio(med["tracker close"].rps, med["ceiling close"].rps))
	}
	fmt.Println()
	fmt.Println(sum.String())
	switch {
	case alive != "ok":
		return fmt.Errorf("the tracker died; its log: %s", tr.logTail())
	case trMem.peers != int64(s.peers):
		return fmt.Errorf("the tracker stores %d peers, %d were loaded", trMem.peers, s.peers)
	}
	return nil
}
