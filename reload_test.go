package chihaya_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startBinary runs the built daemon on the configuration file and returns
// it, its log and the public address, once it serves.
func startBinary(t *testing.T, bin, cfgPath string) (*exec.Cmd, *lockedBuffer, string) {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Env = daemonEnv()
	log := &lockedBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	serving := regexp.MustCompile(`serving announces on (127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := serving.FindStringSubmatch(log.String()); m != nil {
			return cmd, log, m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never served: %s", log.String())
	return nil, nil, ""
}

// TestSIGHUPReload changes the configuration file under a running daemon:
// SIGHUP applies the reloadable keys to the next announce and keeps the
// swarm; keys that need a restart are logged and keep their values; a file
// that does not load is logged, naming the key, and changes nothing. systemd
// hears RELOADING=1 then READY=1 each time.
func TestSIGHUPReload(t *testing.T) {
	bin := buildDaemon(t)
	sock := notifySocket(t)
	cfgPath := filepath.Join(t.TempDir(), "config.json")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"addr": "127.0.0.1:0", "admin_addr": ""}`)
	cmd, log, addr := startBinary(t, bin, cfgPath)
	expectNotify(t, sock, "READY=1")

	announce := func(peer string, left int) map[string]any {
		t.Helper()
		return decodeBody(t, rawGet(t, addr, "GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-TT0001-00000000000"+peer+
			"&port=700"+peer+"&uploaded=0&downloaded=0&left="+string(rune('0'+left))+" HTTP/1.0\r\n\r\n"))
	}
	if m := announce("1", 0); m["interval"] != int64(1800) || m["min interval"] != int64(900) {
		t.Fatalf("before any reload: %v", m)
	}
	hup := func(n int, logLine string) {
		t.Helper()
		cmd.Process.Signal(syscall.SIGHUP)
		expectNotify(t, sock, "RELOADING=1")
		expectNotify(t, sock, "READY=1")
		waitLog(t, log, logLine, n)
	}

	write(`{"addr": "127.0.0.1:0", "admin_addr": "127.0.0.1:0", "announce": "45m", "min_announce": "20m", "max_num_want": 1, "default_num_want": 1}`)
	hup(1, "SIGHUP: reloaded")
	if !strings.Contains(log.String(), "SIGHUP: admin_addr changed in "+cfgPath+": only a restart applies such keys") {
		t.Errorf("admin_addr's change is not reported as needing a restart:\n%s", log.String())
	}
	m := announce("2", 5)
	if m["interval"] != int64(2700) || m["min interval"] != int64(1200) || m["complete"] != int64(1) || m["peers"] != "\x7f\x00\x00\x01\x1b\x59" {
		t.Errorf("after the reload: %v (want interval 2700, min interval 1200 and the swarm's seeder at 127.0.0.1:7001)", m)
	}
	if strings.Contains(log.String(), "serving admin on") {
		t.Error("a reload started the admin listener: admin_addr needs a restart")
	}

	for _, bad := range []struct{ file, key string }{
		{`{"announce": "45m", "min_announce": "50m"}`, "min_announce: 50m0s is longer than announce"},
		{`{"announce": "soon"}`, "announce: "},
		{`{"announce": "1h", "anounce": "1h"}`, `unknown key "anounce"`},
	} {
		write(bad.file)
		hup(1, "SIGHUP: not reloaded, the running configuration stays: "+cfgPath+": config: "+bad.key)
		if m := announce("3", 5); m["interval"] != int64(2700) || m["complete"] != int64(1) {
			t.Errorf("after the bad file %s: %v", bad.file, m)
		}
	}
	if n := strings.Count(log.String(), "SIGHUP: reloaded"); n != 1 {
		t.Errorf("%d reloads logged, want 1", n)
	}
	stopDaemon(t, cmd, log, syscall.SIGTERM)
	expectNotify(t, sock, "STOPPING=1")
}

// TestSIGTERMFinishesRequestInFlight sends SIGTERM while a client is half
// way through its request: the daemon stops accepting, but the request is
// answered (with Connection: close) before it exits.
func TestSIGTERMFinishesRequestInFlight(t *testing.T) {
	bin := buildDaemon(t)
	cfgPath := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfgPath, []byte(`{"addr": "127.0.0.1:0", "admin_addr": ""}`), 0o644)
	cmd, log, addr := startBinary(t, bin, cfgPath)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET "+announceTarget+" HTTP/1.1\r\nHost: tracker\r\n") // a keep-alive request, half sent
	time.Sleep(100 * time.Millisecond)                                        // let the server read the first half
	cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, log, "shutting down: draining requests in flight", 1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
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

	br := bufio.NewReader(c)
	resp, err := io.ReadAll(br) // the server closes after answering
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if !strings.Contains(string(resp), "\r\nConnection: close\r\n") {
		t.Errorf("the answer during shutdown does not close the connection: %q", resp)
	}
	if m := decodeBody(t, string(resp)); m["incomplete"] != int64(1) {
		t.Errorf("answer %v", m)
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil || !strings.Contains(log.String(), "shut down cleanly") {
			t.Errorf("exit %v, log:\n%s", err, log.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15s after SIGTERM:\n%s", log.String())
	}
}
