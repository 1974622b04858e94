package chihaya_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya"
	"github.com/chihaya/chihaya/config"
)

// buildDaemon builds the command into a temporary directory.
func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chihaya")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/chihaya").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// notifySocket plays systemd's notification socket: it sets NOTIFY_SOCKET
// for the test (and the processes it starts) and returns the socket.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

// expectNotify reads the next notification and checks it starts with want.
func expectNotify(t *testing.T, c *net.UnixConn, want string) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("waiting for %q: %v", want, err)
	}
	if got := string(buf[:n]); !strings.HasPrefix(got, want) {
		t.Fatalf("notification %q, want %q", got, want)
	}
	return string(buf[:n])
}

// daemonEnv is the test's environment without systemd's variables, plus
// extra.
func daemonEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LISTEN_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// waitLog waits until the log has n matches of substr.
func waitLog(t *testing.T, log *lockedBuffer, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(log.String(), substr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q (x%d) in the log after 10s:\n%s", substr, n, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopDaemon sends sig and checks the daemon exits cleanly.
func stopDaemon(t *testing.T, cmd *exec.Cmd, log *lockedBuffer, sig os.Signal) {
	t.Helper()
	cmd.Process.Signal(sig)
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil || !strings.Contains(log.String(), "shut down cleanly") {
			t.Errorf("%v: exit %v, log:\n%s", sig, err, log.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%v: still running after 15s; log:\n%s", sig, log.String())
	}
}

// TestNotifyReadyAndStopping runs the daemon in-process as a Type=notify
// service: READY=1 once both listeners accept, STOPPING=1 at shutdown.
func TestNotifyReadyAndStopping(t *testing.T) {
	sock := notifySocket(t)
	cfg := config.Default()
	cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- chihaya.Run(ctx, cfg, func(p, _ net.Addr) { listening <- p }) }()
	ready := expectNotify(t, sock, "READY=1")
	addr := <-listening
	if !strings.Contains(ready, "STATUS=serving announces on "+addr.String()) {
		t.Errorf("READY notification %q does not say where it serves", ready)
	}
	decodeBody(t, rawGet(t, addr.String(), "GET "+announceTarget+" HTTP/1.0\r\n\r\n")) // ready means serving
	cancel()
	expectNotify(t, sock, "STOPPING=1")
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// passedSocket is a listening socket as a socket unit holds it: the test
// keeps it open across daemon restarts.
func passedSocket(t *testing.T) (*os.File, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // f is a duplicate: the socket stays open, and listening
	t.Cleanup(func() { f.Close() })
	return f, addr
}

// TestSocketActivation starts the built binary as systemd would for a
// socket unit with two sockets (FileDescriptorName=public and admin): it
// serves on them, not on the configured addresses (which cannot be bound
// here), and a restart on the same sockets loses no connection: those made
// while no daemon runs, or while the next one starts, are queued by the
// kernel and served by the next daemon.
func TestSocketActivation(t *testing.T) {
	bin := buildDaemon(t)
	sock := notifySocket(t)
	pubFile, pubAddr := passedSocket(t)
	admFile, admAddr := passedSocket(t)
	cfgPath := filepath.Join(t.TempDir(), "config.json")
	// TEST-NET addresses: binding them fails, so serving proves the passed
	// sockets are used.
	os.WriteFile(cfgPath, []byte(`{"addr": "192.0.2.1:6881", "admin_addr": "192.0.2.1:6880"}`), 0o644)

	startDaemon := func() (*exec.Cmd, *lockedBuffer) {
		t.Helper()
		// systemd sets LISTEN_PID to the service's pid after forking; a
		// shell that execs the daemon has the daemon's pid.
		cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, bin, "-config", cfgPath)
		cmd.ExtraFiles = []*os.File{pubFile, admFile} // descriptors 3 and 4
		cmd.Env = daemonEnv("LISTEN_FDS=2", "LISTEN_FDNAMES=public:admin")
		log := &lockedBuffer{}
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd, log
	}

	first, log := startDaemon()
	expectNotify(t, sock, "READY=1")
	m := decodeBody(t, rawGet(t, pubAddr, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
	if m["incomplete"] != int64(1) {
		t.Errorf("announce on the passed socket: %v", m)
	}
	if resp := rawGet(t, admAddr, "GET /check HTTP/1.0\r\n\r\n"); !strings.HasSuffix(resp, "STILL-ALIVE") {
		t.Errorf("/check on the passed admin socket: %q", resp)
	}
	if !strings.Contains(log.String(), "addr: serving on the socket systemd passed ("+pubAddr+")") {
		t.Errorf("log does not say the passed socket is used:\n%s", log.String())
	}
	stopDaemon(t, first, log, syscall.SIGTERM)
	expectNotify(t, sock, "STOPPING=1")

	// No daemon runs: the connection is queued, and so is its request.
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", pubAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("connecting while the daemon restarts: %v", err)
		}
		c.SetDeadline(time.Now().Add(15 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	var queued []net.Conn
	for i := range 2 {
		if i == 1 {
			second, log2 := startDaemon() // the second one is made while it starts
			defer stopDaemon(t, second, log2, syscall.SIGTERM)
		}
		c := dial()
		fmt.Fprintf(c, "GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-TT0001-00000000000%d&port=700%d&uploaded=0&downloaded=0&left=0 HTTP/1.0\r\n\r\n", i, i)
		queued = append(queued, c)
	}
	for i, c := range queued {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		if m := decodeBody(t, b.String()); m["complete"] == nil {
			t.Errorf("queued connection %d: %v", i, m)
		}
	}
	expectNotify(t, sock, "READY=1")
}
