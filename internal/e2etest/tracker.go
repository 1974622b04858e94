package e2etest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Build builds the tracker daemon (the module's cmd/chihaya) into dir and
// returns the binary's path. $GO names the go command (default "go", which
// `go test` puts first in $PATH).
func Build(dir string) (string, error) {
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	bin := filepath.Join(dir, "chihaya")
	out, err := exec.Command(goCmd, "build", "-o", bin, "github.com/chihaya/chihaya/cmd/chihaya").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/chihaya: %v\n%s", err, tail(string(out), 20))
	}
	return bin, nil
}

// Intervals short enough that a case takes seconds: clients re-announce
// every 2 s, and a silent peer is gone after 6 s (the reaper runs at a
// quarter of the lifetime).
const (
	AnnounceInterval = 2 * time.Second
	MinAnnounce      = 1 * time.Second
	PeerLifetime     = 6 * time.Second
)

// Tracker is a running tracker daemon.
type Tracker struct {
	// Addr and Admin are the public and the admin listeners' addresses,
	// UDP the UDP tracker's socket (BEP 15; "" if the daemon does not
	// serve UDP), all on 127.0.0.1.
	Addr, Admin, UDP string
	// Log is the path of the daemon's log (its stderr, at -v=3: a line per
	// request).
	Log string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // cmd.Wait's, once done is closed
}

// StartTracker starts the daemon bin with its files in dir: listening on
// free ports of 127.0.0.1 (HTTP, admin and UDP), with the short intervals above and the keys of
// extra added to its configuration (e.g. "private_tracker": true). It
// returns once the admin listener answers /check. The daemon is killed
// when the test ends if Stop has not stopped it.
func StartTracker(tb testing.TB, bin, dir string, extra map[string]any) *Tracker {
	tb.Helper()
	cfg := map[string]any{
		"addr":                    "127.0.0.1:0",
		"admin_addr":              "127.0.0.1:0",
		"udp_addr":                "127.0.0.1:0",
		"announce":                AnnounceInterval.String(),
		"min_announce":            MinAnnounce.String(),
		"peer_lifetime":           PeerLifetime.String(),
		"purge_inactive_torrents": true,
	}
	maps.Copy(cfg, extra)
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		tb.Fatalf("e2etest: tracker configuration: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	tr := &Tracker{Log: filepath.Join(dir, "tracker.log"), done: make(chan struct{})}
	logFile, err := os.Create(tr.Log)
	if err != nil {
		tb.Fatal(err)
	}
	defer logFile.Close() // the daemon has its own descriptor
	tr.cmd = exec.Command(bin, "-config", cfgPath, "-v=3")
	tr.cmd.Stderr = logFile
	tr.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := tr.cmd.Start(); err != nil {
		tb.Fatalf("e2etest: starting the tracker: %v", err)
	}
	go func() { tr.err = tr.cmd.Wait(); close(tr.done) }()
	tb.Cleanup(func() {
		select {
		case <-tr.done:
		default:
			syscall.Kill(tr.cmd.Process.Pid, syscall.SIGKILL)
			<-tr.done
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		// The daemon logs where it serves before it answers /check.
		tr.Addr, tr.Admin, tr.UDP = tr.listeners()
		if tr.Addr != "" && tr.Admin != "" {
			if body, err := Get("http://" + tr.Admin + "/check"); err == nil && strings.TrimSpace(body) == "STILL-ALIVE" {
				return tr
			}
		}
		select {
		case <-tr.done:
			tb.Fatalf("tracker exited at start-up (%v):\n%s", tr.err, Tail(tr.Log, 20))
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("tracker did not answer /check within 10s:\n%s", Tail(tr.Log, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The lines that say where the daemon serves: "serving announces on
// ADDR", "serving UDP announces on ADDR (N sockets)", "serving admin on
// ADDR".
var listening = regexp.MustCompile(`serving (announces|UDP announces|admin) on (127\.0\.0\.1:\d+)`)

// listeners reads the listeners' addresses from the log.
func (tr *Tracker) listeners() (public, admin, udp string) {
	for _, line := range tr.lines() {
		if m := listening.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "announces":
				public = m[2]
			case "UDP announces":
				udp = m[2]
			default:
				admin = m[2]
			}
		}
	}
	return public, admin, udp
}

// PID is the daemon's process id.
func (tr *Tracker) PID() int { return tr.cmd.Process.Pid }

// AnnounceURL is the HTTP announce URL; with a passkey, private mode's
// /<passkey>/announce.
func (tr *Tracker) AnnounceURL(passkey string) string { return tr.url(passkey, "announce") }

// UDPAnnounceURL is the UDP tracker's URL, udp://127.0.0.1:PORT/announce;
// with a passkey, udp://127.0.0.1:PORT/<passkey>/announce, whose path a
// client sends as BEP 41 URL data.
func (tr *Tracker) UDPAnnounceURL(passkey string) string {
	if passkey != "" {
		return "udp://" + tr.UDP + "/" + passkey + "/announce"
	}
	return "udp://" + tr.UDP + "/announce"
}

// ScrapeURL is the HTTP scrape URL; with a passkey, /<passkey>/scrape.
func (tr *Tracker) ScrapeURL(passkey string) string { return tr.url(passkey, "scrape") }

func (tr *Tracker) url(passkey, action string) string {
	if passkey != "" {
		return "http://" + tr.Addr + "/" + passkey + "/" + action
	}
	return "http://" + tr.Addr + "/" + action
}

// Stop sends SIGTERM to the daemon's PID and waits for it to exit (SIGKILL
// after 30 s). The error says why the shutdown was not clean: a non-zero
// exit, or no "shut down cleanly" in the log.
func (tr *Tracker) Stop() error {
	select {
	case <-tr.done:
		return fmt.Errorf("tracker had already exited: %v", tr.err)
	default:
	}
	syscall.Kill(tr.PID(), syscall.SIGTERM)
	select {
	case <-tr.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(tr.PID(), syscall.SIGKILL)
		<-tr.done
		return errors.New("tracker ignored SIGTERM for 30s and was killed")
	}
	if tr.err != nil {
		return fmt.Errorf("tracker exited: %v", tr.err)
	}
	if !strings.Contains(tr.read(), "shut down cleanly") {
		return errors.New(`tracker exited 0 without logging "shut down cleanly"`)
	}
	return nil
}

func (tr *Tracker) read() string {
	b, _ := os.ReadFile(tr.Log)
	return string(b)
}

func (tr *Tracker) lines() []string { return strings.Split(tr.read(), "\n") }

// A request line, as the daemon logs each at -v=3: for HTTP
// "... http.go:N] GET /path?query from addr: <error or <nil>>", for UDP
// "... udp: action N from addr: <error or <nil>>".
var (
	requestLine  = regexp.MustCompile(`(?:http\.go:\d+\] GET (/\S*)|\] udp: (action \d+)) from (\S+): (.*)$`)
	announcePath = regexp.MustCompile(`^(/[^/ ]+)?/announce\?`)
	errorLine    = regexp.MustCompile(`^[EF]\d|panic`)
)

// Request is one request the tracker logged.
type Request struct {
	Target string // path and query; for UDP "action N" (0 connect, 1 announce, 2 scrape)
	From   string // the client's address
	Err    string // "<nil>" when it was answered without a failure
	Line   string // the whole log line
}

// Requests returns the requests in the log at path, in order.
func Requests(path string) []Request {
	b, _ := os.ReadFile(path)
	var rs []Request
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m := requestLine.FindStringSubmatch(sc.Text()); m != nil {
			rs = append(rs, Request{Target: m[1] + m[2], From: m[3], Err: m[4], Line: sc.Text()})
		}
	}
	return rs
}

// Problems returns the log's error and panic lines and its requests that
// got a failure, except those whose line matches expected (failures a test
// asked for; nil: none), and the number of requests.
func (tr *Tracker) Problems(expected *regexp.Regexp) (bad []string, requests int) {
	for _, line := range tr.lines() {
		if errorLine.MatchString(line) {
			bad = append(bad, line)
		}
	}
	rs := Requests(tr.Log)
	for _, r := range rs {
		if r.Err != "<nil>" && (expected == nil || !expected.MatchString(r.Line)) {
			bad = append(bad, r.Line)
		}
	}
	return bad, len(rs)
}

// SawAnnounce reports whether the tracker logged an HTTP announce (at
// /announce or /<passkey>/announce) with event=event from the client
// listening on port. (The UDP log lines name no event.)
func (tr *Tracker) SawAnnounce(port int, event string) bool {
	p := strconv.Itoa(port)
	for _, r := range Requests(tr.Log) {
		if announcePath.MatchString(r.Target) && queryHas(r.Target, "port", p) && queryHas(r.Target, "event", event) {
			return true
		}
	}
	return false
}

// queryHas reports whether target's query has key=value (raw, unescaped).
func queryHas(target, key, value string) bool {
	_, q, _ := strings.Cut(target, "?")
	for kv := range strings.SplitSeq(q, "&") {
		if kv == key+"="+value {
			return true
		}
	}
	return false
}
