package chihaya

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
)

// TestBinarySignals checks SIGTERM and SIGINT each end the built daemon
// cleanly, and that a bad config stops it with the key named.
func TestBinarySignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		d := startDaemon(t, `{"addr": "127.0.0.1:0", "admin_addr": "127.0.0.1:0", "udp_addr": ""}`)
		decodeBody(t, rawGet(t, d.public, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
		d.shutdown(t, sig)
	}

	cfgPath := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfgPath, []byte(`{"announce": "half an hour"}`), 0o644)
	out, err := exec.Command(daemonBinary(t), "-config", cfgPath).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !bytes.Contains(out, []byte("announce:")) {
		t.Errorf("bad config: %v, output %s", err, out)
	}
}

// TestSIGHUPReload changes the configuration file under a running daemon:
// SIGHUP applies the reloadable keys to the next announce and keeps the
// swarm; keys that need a restart are logged and keep their values; a file
// that does not load is logged, naming the key, and changes nothing. systemd
// hears RELOADING=1 then READY=1 each time.
func TestSIGHUPReload(t *testing.T) {
	sock := notifySocket(t)
	d := startDaemon(t, `{"addr": "127.0.0.1:0", "admin_addr": "", "udp_addr": ""}`)
	expectNotify(t, sock, "READY=1")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(d.config, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	announce := func(peer string, left int) map[string]any {
		t.Helper()
		return decodeBody(t, rawGet(t, d.public, "GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-TT0001-00000000000"+peer+
			"&port=700"+peer+"&uploaded=0&downloaded=0&left="+string(rune('0'+left))+" HTTP/1.0\r\n\r\n"))
	}
	if m := announce("1", 0); m["interval"] != int64(1800) || m["min interval"] != int64(900) {
		t.Fatalf("before any reload: %v", m)
	}
	hup := func(n int, logLine string) {
		t.Helper()
		d.cmd.Process.Signal(syscall.SIGHUP)
		expectNotify(t, sock, "RELOADING=1")
		expectNotify(t, sock, "READY=1")
		d.waitLog(t, logLine, n)
	}

	write(`{"addr": "127.0.0.1:0", "admin_addr": "127.0.0.1:0", "udp_addr": "", "announce": "45m", "min_announce": "20m", "max_num_want": 1, "default_num_want": 1}`)
	hup(1, "SIGHUP: reloaded")
	if !strings.Contains(d.log.String(), "SIGHUP: admin_addr changed in "+d.config+": only a restart applies such keys") {
		t.Errorf("admin_addr's change is not reported as needing a restart:\n%s", d.log.String())
	}
	m := announce("2", 5)
	if m["interval"] != int64(2700) || m["min interval"] != int64(1200) || m["complete"] != int64(1) || m["peers"] != "\x7f\x00\x00\x01\x1b\x59" {
		t.Errorf("after the reload: %v (want interval 2700, min interval 1200 and the swarm's seeder at 127.0.0.1:7001)", m)
	}
	if strings.Contains(d.log.String(), "serving admin on") {
		t.Error("a reload started the admin listener: admin_addr needs a restart")
	}

	for _, bad := range []struct{ file, key string }{
		{`{"announce": "45m", "min_announce": "50m"}`, "min_announce: 50m0s is longer than announce"},
		{`{"announce": "soon"}`, "announce: "},
		{`{"announce": "1h", "anounce": "1h"}`, `unknown key "anounce"`},
	} {
		write(bad.file)
		hup(1, "SIGHUP: not reloaded, the running configuration stays: "+d.config+": config: "+bad.key)
		if m := announce("3", 5); m["interval"] != int64(2700) || m["complete"] != int64(1) {
			t.Errorf("after the bad file %s: %v", bad.file, m)
		}
	}
	if n := strings.Count(d.log.String(), "SIGHUP: reloaded"); n != 1 {
		t.Errorf("%d reloads logged, want 1", n)
	}
	d.shutdown(t, syscall.SIGTERM)
	expectNotify(t, sock, "STOPPING=1")
}

// TestSIGTERMFinishesRequestInFlight sends SIGTERM while a client is half
// way through its request: the daemon stops accepting, but the request is
// answered (with Connection: close) before it exits.
func TestSIGTERMFinishesRequestInFlight(t *testing.T) {
	d := startDaemon(t, `{"addr": "127.0.0.1:0", "admin_addr": "", "udp_addr": ""}`)

	c, err := net.Dial("tcp", d.public)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET "+announceTarget+" HTTP/1.1\r\nHost: tracker\r\n") // a keep-alive request, half sent
	time.Sleep(100 * time.Millisecond)                                        // let the server read the first half
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.waitLog(t, "shutting down: draining requests in flight", 1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", d.public, time.Second)
		if err != nil {
			break // the listener is closed
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 5s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	io.WriteString(c, "User-Agent: slow/1.0\r\n\r\n")

	resp, err := io.ReadAll(bufio.NewReader(c)) // the server closes after answering
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if !strings.Contains(string(resp), "\r\nConnection: close\r\n") {
		t.Errorf("the answer during shutdown does not close the connection: %q", resp)
	}
	if m := decodeBody(t, string(resp)); m["incomplete"] != int64(1) {
		t.Errorf("answer %v", m)
	}
	d.exitedCleanly(t)
}

// reloadingBackend tells siteReloads of each reload.
type reloadingBackend struct{}

var siteReloads = make(chan struct{}, 1)

func (reloadingBackend) RecordAnnounce(backend.Announce) error { return nil }
func (reloadingBackend) Close() error                          { return nil }
func (reloadingBackend) Reload(context.Context) error          { siteReloads <- struct{}{}; return nil }

type reloadingDriver struct{}

func (reloadingDriver) Open(json.RawMessage) (backend.Conn, error) { return reloadingBackend{}, nil }

// Registered once for the test binary: Register panics on a second call.
func init() { backend.Register("test-reloading", reloadingDriver{}) }

func TestSIGUSR1ReloadsTheSite(t *testing.T) {
	cfg := loopbackConfig()
	cfg.AdminAddr, cfg.Backend.Name = "", "test-reloading"
	usr1 := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, func(Addrs) { close(ready) }, runOptions{usr1: usr1})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	usr1 <- syscall.SIGUSR1
	select {
	case <-siteReloads:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGUSR1 did not reach the backend's Reload")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
