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
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chihaya/chihaya/bench/workload"
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
	for _, t := range targets[:2+btoi(s.udp)] {
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

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// memory is what a server holds once loaded.
type memory struct {
	peers   int64 // stored, as the server counts them
	rss     int64 // resident bytes
	perPeer int64 // resident bytes gained while loading, per stored peer
}

// fill runs load against srv and measures what srv gained.
func fill(srv *server, name string, load func() (result, error)) (memory, error) {
	rss0 := srv.rss()
	r, err := load()
	if err != nil {
		return memory{}, fmt.Errorf("loading %s: %w", name, err)
	}
	fmt.Printf("  %s: %.0f announces/s, %d errors\n", name, r.rps, r.errors)
	time.Sleep(time.Second) // let the last answers' garbage be collected
	m := memory{rss: srv.rss()}
	if m.peers, err = srv.countPeers(); err != nil {
		return memory{}, err
	}
	if m.peers > 0 {
		m.perPeer = (m.rss - rss0) / m.peers
	}
	return m, nil
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}

// result is one line of the load generator.
type result struct {
	rps, p50, p90, p99, p999 float64
	failed, errors           int64
	firstError               string
}

func (r result) row() string {
	s := fmt.Sprintf("%9.0f %8.3f %8.3f %8.3f %8.3f %7d %7d", r.rps, r.p50, r.p90, r.p99, r.p999, r.failed, r.errors)
	if r.firstError != "" {
		s += "  first error: " + r.firstError
	}
	return s
}

// parseResult reads the load generator's key=value line.
func parseResult(line string) (result, error) {
	var r result
	line, firstErr, _ := strings.Cut(line, " first_error=")
	if firstErr != "" {
		if s, err := strconv.Unquote(firstErr); err == nil {
			r.firstError = s
		} else {
			r.firstError = firstErr
		}
	}
	floats := map[string]*float64{"rps": &r.rps, "p50_ms": &r.p50, "p90_ms": &r.p90, "p99_ms": &r.p99, "p999_ms": &r.p999}
	ints := map[string]*int64{"failed": &r.failed, "errors": &r.errors}
	seen := 0
	for _, f := range strings.Fields(line)[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return result{}, fmt.Errorf("malformed load line %q", line)
		}
		var err error
		if p := floats[k]; p != nil {
			*p, err = strconv.ParseFloat(v, 64)
			seen++
		} else if p := ints[k]; p != nil {
			*p, err = strconv.ParseInt(v, 10, 64)
			seen++
		}
		if err != nil {
			return result{}, fmt.Errorf("load line: %s=%q: %v", k, v, err)
		}
	}
	if seen != len(floats)+len(ints) {
		return result{}, fmt.Errorf("load line %q lacks some of rps, p50_ms, p90_ms, p99_ms, p999_ms, failed, errors", line)
	}
	return r, nil
}

// median returns the median of each figure of the runs.
func median(runs []result) result {
	pick := func(f func(r result) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[(len(v)-1)/2]
	}
	return result{
		rps:    pick(func(r result) float64 { return r.rps }),
		p50:    pick(func(r result) float64 { return r.p50 }),
		p90:    pick(func(r result) float64 { return r.p90 }),
		p99:    pick(func(r result) float64 { return r.p99 }),
		p999:   pick(func(r result) float64 { return r.p999 }),
		failed: int64(pick(func(r result) float64 { return float64(r.failed) })),
		errors: int64(pick(func(r result) float64 { return float64(r.errors) })),
	}
}

// runLoad runs the load generator and returns its last line's figures.
func runLoad(ctx context.Context, bin string, args []string) (result, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err != nil {
		return result{}, fmt.Errorf("load %s: %v: %s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return parseResult(lines[len(lines)-1])
}

// answersConnect reports whether a BEP 15 tracker answers a connect
// request at target (udp://host:port) within three seconds.
func answersConnect(target string) bool {
	c, err := net.Dial("udp", strings.TrimPrefix(target, "udp://"))
	if err != nil {
		return false
	}
	defer c.Close()
	req := binary.BigEndian.AppendUint64(nil, 0x41727101980) // protocol_id
	req = binary.BigEndian.AppendUint32(req, 0)              // action: connect
	req = binary.BigEndian.AppendUint32(req, 0x0b3c4d5e)     // transaction_id
	buf := make([]byte, 64)
	for range 3 {
		c.Write(req)
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil && n >= 16 && binary.BigEndian.Uint32(buf) == 0 && binary.BigEndian.Uint32(buf[4:]) == 0x0b3c4d5e {
			return true
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			time.Sleep(time.Second) // refused: nothing listens yet
		}
	}
	return false
}

// A server is a started tracker process.
type server struct {
	cmd             *exec.Cmd
	log             *os.File
	httpURL, udpURL string
	adminURL        string
	exited          chan struct{}
	countPeers      func() (int64, error) // the peers it stores
}

func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *server) stop() {
	if s.alive() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.log.Close()
}

// rss returns the process's resident memory in bytes, 0 once it is gone.
func (s *server) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log.Name())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// start runs the command with its output to logName and waits until every
// TCP address in ready accepts connections.
func start(cmd *exec.Cmd, logName string, ready ...string) (*server, error) {
	log, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	s := &server{cmd: cmd, log: log, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	for _, addr := range ready {
		for deadline := time.Now().Add(15 * time.Second); ; {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if !s.alive() || time.Now().After(deadline) {
				s.stop()
				return nil, fmt.Errorf("%s does not listen on %s; its log: %s", filepath.Base(cmd.Path), addr, s.logTail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(500 * time.Millisecond) // settle, before the first RSS reading
	return s, nil
}

// freePort returns a loopback port that is free for network ("tcp" or
// "udp") now.
func freePort(network string) (string, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.LocalAddr().String(), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startTracker starts bin/chihaya on s.config with loopback addresses.
func startTracker(ctx context.Context, s *settings, work string) (*server, error) {
	raw, err := os.ReadFile(s.config)
	if err != nil {
		return nil, err
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", s.config, err)
	}
	addr, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	admin, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	set := func(k, v string) { cfg[k], _ = json.Marshal(v) }
	set("addr", addr)
	set("admin_addr", admin)
	cfg["private_tracker"] = json.RawMessage("false") // the benchmark's peers have no passkeys
	var udp string
	if s.udp {
		if udp, err = freePort("udp"); err != nil {
			return nil, err
		}
	}
	if configKnows("udp_addr") {
		set("udp_addr", udp) // "" (UDP=0): no UDP frontend, rather than its default port on every interface
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(work, "config.json")
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		return nil, err
	}
	srv, err := start(exec.CommandContext(ctx, "bin/chihaya", "-config", cfgPath), filepath.Join(work, "tracker.log"), addr, admin)
	if err != nil {
		return nil, err
	}
	srv.httpURL = "http://" + addr + "/announce"
	srv.adminURL = "http://" + admin
	if udp != "" {
		srv.udpURL = "udp://" + udp
	}
	srv.countPeers = func() (int64, error) { return trackerPeers(srv.adminURL + "/stats") }
	return srv, nil
}

// trackerPeers returns the peers the tracker stores, leechers and seeders
// of both address families, from its /stats.
func trackerPeers(url string) (int64, error) {
	body, err := get(url)
	if err != nil {
		return 0, err
	}
	type counts struct{ Current int64 }
	type family struct{ Peers, Seeds counts }
	var st struct {
		IPv4 family `json:"Peers.IPv4"`
		IPv6 family `json:"Peers.IPv6"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, fmt.Errorf("%s: %w", url, err)
	}
	return st.IPv4.Peers.Current + st.IPv4.Seeds.Current + st.IPv6.Peers.Current + st.IPv6.Seeds.Current, nil
}

func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	return body, err
}

// startOpentracker starts Debian's opentracker on loopback, HTTP and UDP
// on one port. Debian builds it in whitelist mode: every benchmark
// info_hash is listed.
func startOpentracker(ctx context.Context, s *settings, work string) (*server, error) {
	bin, err := exec.LookPath("opentracker")
	if err != nil {
		return nil, errors.New("OPENTRACKER=1, but opentracker is not installed (Debian: apt-get install opentracker)")
	}
	dir := filepath.Join(work, "ot") // its chroot
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	os.Chmod(work, 0o755) // it drops privileges, then reads the whitelist
	var wl bufio.Writer
	f, err := os.Create(filepath.Join(dir, "wl.txt"))
	if err != nil {
		return nil, err
	}
	wl.Reset(f)
	for k := 1; k <= s.torrents; k++ {
		h := workload.InfoHash(k)
		wl.WriteString(hex.EncodeToString(h[:]) + "\n")
	}
	if err := errors.Join(wl.Flush(), f.Chmod(0o644), f.Close()); err != nil {
		return nil, err
	}
	// One port free for both TCP and UDP.
	var addr string
	for range 20 {
		if addr, err = freePort("tcp"); err != nil {
			return nil, err
		}
		if c, err := net.ListenPacket("udp", addr); err == nil {
			c.Close()
			break
		}
		addr = ""
	}
	if addr == "" {
		return nil, errors.New("no loopback port free for both TCP and UDP")
	}
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"-i", "127.0.0.1", "-p", port, "-P", port, "-d", dir, "-w", "/wl.txt", "-A", "127.0.0.1"}
	if _, err := user.Lookup("_opentracker"); err == nil {
		args = append(args, "-u", "_opentracker")
	}
	srv, err := start(exec.CommandContext(ctx, bin, args...), filepath.Join(work, "opentracker.log"), addr)
	if err != nil {
		return nil, err
	}
	srv.httpURL = "http://" + addr + "/announce"
	srv.udpURL = "udp://" + addr
	srv.countPeers = func() (int64, error) {
		// The first line of /stats?mode=peer is the peers, seeders included.
		body, err := get("http://" + addr + "/stats?mode=peer")
		if err != nil {
			return 0, err
		}
		first, _, _ := strings.Cut(string(body), "\n")
		n, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("opentracker's /stats?mode=peer: %q: %v", body, err)
		}
		return n, nil
	}
	return srv, nil
}
