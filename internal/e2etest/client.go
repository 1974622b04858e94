package e2etest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Client is a running BitTorrent client (or any program started with
// StartProcess).
type Client struct {
	// Name is the program's, for messages.
	Name string
	// Log is the path of its output.
	Log string

	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has exited
	timedOut atomic.Bool   // the deadline's signal was sent
	grace    time.Duration
}

// Exit is how a client ended.
type Exit struct {
	Code     int            // the exit status; -1 when a signal ended it
	Signal   syscall.Signal // the signal that ended it, when Code is -1
	TimedOut bool           // its deadline passed before it ended
}

func (e Exit) String() string {
	s := "exit " + strconv.Itoa(e.Code)
	if e.Code == -1 {
		s = "killed by " + e.Signal.String()
	}
	if e.TimedOut {
		s += " after its deadline"
	}
	return s
}

// noProxy is the environment without proxy variables: aria2 and
// Transmission's libcurl would otherwise send the loopback tracker
// requests to a proxy.
func noProxy() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy", "ftp_proxy":
			return true
		}
		return false
	})
}

// StartProcess runs name with args, its output to the file logPath, stdin
// empty, without proxy variables. After deadline it is sent sig, and
// SIGKILL grace later (as `timeout -s sig -k grace deadline` would). When
// the test ends it is stopped if still running.
func StartProcess(tb testing.TB, logPath string, deadline time.Duration, sig syscall.Signal, grace time.Duration, name string, args ...string) *Client {
	tb.Helper()
	path, err := LookPath(name)
	if err != nil {
		tb.Fatalf("e2etest: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		tb.Fatal(err)
	}
	out, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	c := &Client{Name: name, Log: logPath, done: make(chan struct{}), grace: grace}
	c.cmd = exec.Command(path, args...)
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.cmd.Env = noProxy()
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		tb.Fatalf("e2etest: starting %s: %v", name, err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	timer := time.AfterFunc(deadline, func() {
		c.timedOut.Store(true)
		c.signal(sig)
		time.AfterFunc(grace, func() { c.signal(syscall.SIGKILL) })
	})
	tb.Cleanup(func() {
		timer.Stop()
		if c.Running() {
			c.Stop(syscall.SIGTERM)
		}
	})
	return c
}

// PID is the client's process id.
func (c *Client) PID() int { return c.cmd.Process.Pid }

// Running reports whether the client has not exited yet.
func (c *Client) Running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *Client) signal(sig syscall.Signal) {
	if c.Running() {
		syscall.Kill(c.PID(), sig)
	}
}

// Stop sends sig to the client's PID and waits for it to exit, sending
// SIGKILL if it has not after its grace period.
func (c *Client) Stop(sig syscall.Signal) Exit {
	c.signal(sig)
	select {
	case <-c.done:
	case <-time.After(c.grace):
		c.signal(syscall.SIGKILL)
	}
	return c.Wait()
}

// Vanish kills the client with SIGKILL, so that it sends nothing more to
// anyone, and waits for it.
func (c *Client) Vanish() Exit { return c.Stop(syscall.SIGKILL) }

// Wait waits for the client to end on its own (or by its deadline).
func (c *Client) Wait() Exit {
	<-c.done
	st := c.cmd.ProcessState
	e := Exit{Code: st.ExitCode(), TimedOut: c.timedOut.Load()}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal()
	}
	return e
}

// Aria2 starts aria2c on torrent, downloading into (or seeding from) dir
// and listening on port of 127.0.0.1, for at most deadline. DHT, local peer
// discovery and peer exchange are off and IPv6 is disabled. Its console
// goes to logPath, its info log (which names every connection it makes) to
// logPath+".debug". extra are further options, e.g. --seed-time=0.25.
// SIGINT is a graceful shutdown: aria2 sends `stopped` and exits 0.
func Aria2(tb testing.TB, dir, torrent string, port int, logPath string, deadline time.Duration, extra ...string) *Client {
	tb.Helper()
	args := []string{"--no-conf=true", "--dir=" + dir,
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--disable-ipv6=true", "--interface=127.0.0.1", "--listen-port=" + strconv.Itoa(port), "--seed-ratio=0.0",
		"--file-allocation=none", "--summary-interval=0", "--console-log-level=notice",
		"--log=" + logPath + ".debug", "--log-level=info"}
	args = append(append(args, extra...), torrent)
	return StartProcess(tb, logPath, deadline, syscall.SIGTERM, 5*time.Second, "aria2c", args...)
}

// Transmission starts transmission-cli on torrent, downloading into (or
// seeding from) dir and listening on port, with its configuration in
// cfgDir: settingsFile (JSON; DHT, LPD, PEX, uTP and port mapping off,
// bound to 127.0.0.1) with peer-port set to port. It runs until stopped
// (SIGINT ends it) or until deadline, when it gets SIGINT.
func Transmission(tb testing.TB, settingsFile, cfgDir, dir, torrent string, port int, logPath string, deadline time.Duration) *Client {
	tb.Helper()
	b, err := os.ReadFile(settingsFile)
	if err != nil {
		tb.Fatalf("e2etest: Transmission settings: %v", err)
	}
	var settings map[string]any
	if err := json.Unmarshal(b, &settings); err != nil {
		tb.Fatalf("e2etest: Transmission settings %s: %v", settingsFile, err)
	}
	settings["peer-port"] = port
	if b, err = json.MarshalIndent(settings, "", "  "); err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "settings.json"), b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return StartProcess(tb, logPath, deadline, syscall.SIGINT, 10*time.Second, "transmission-cli",
		"-g", cfgDir, "-w", dir, "-p", strconv.Itoa(port), "-M", torrent)
}

// Libtorrent starts script (e2e/libtorrent_client.py, a client on
// libtorrent-rasterbar) with Debian's python3 on torrent, seeding from or
// downloading into dir and listening on port of 127.0.0.1, for at most
// deadline. SIGINT ends it: it sends `stopped` and exits 0.
func Libtorrent(tb testing.TB, script, dir, torrent string, port int, logPath string, deadline time.Duration) *Client {
	tb.Helper()
	return StartProcess(tb, logPath, deadline, syscall.SIGINT, 10*time.Second, "/usr/bin/python3",
		script, torrent, dir, strconv.Itoa(port))
}
