package chihaya

// The helpers every test of the daemon shares: running it in-process or as
// the built binary, the other programs the tests run for real (nginx,
// systemd's tools, Prometheus), loopback ports, and raw HTTP.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/chihaya/chihaya/config"
)

// TestMain removes the daemon daemonBinary built, once every test is done.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// built is the daemon as daemonBinary built it, once for all the tests.
var built struct {
	once     sync.Once
	dir, bin string
	err      error
}

// daemonBinary returns the path of the command (./cmd/chihaya), built on
// first use.
func daemonBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "chihaya-test-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "chihaya")
		if out, err := exec.Command("go", "build", "-o", built.bin, "./cmd/chihaya").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// loopbackConfig is the default configuration with listeners on loopback
// ports the system picks, and UDP off.
func loopbackConfig() *config.Config {
	cfg := config.Default()
	cfg.Addr, cfg.AdminAddr, cfg.UDPAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	return cfg
}

// start runs the daemon in-process on loopbackConfig, as mutate changes
// it, and stops it when the test ends, checking that it shut down cleanly.
func start(t *testing.T, mutate func(*config.Config)) (public, admin string) {
	t.Helper()
	cfg := loopbackConfig()
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, func(a Addrs) {
			addrs := [2]string{a.Public.String()}
			if a.Admin != nil {
				addrs[1] = a.Admin.String()
			}
			ready <- addrs
		})
	}()
	select {
	case addrs := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v after shutdown", err)
			}
		})
		return addrs[0], addrs[1]
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	return "", ""
}

// process is a program a test runs: its output is kept, and it is stopped
// by its PID when the test ends (SIGTERM, then SIGKILL if it lingers).
type process struct {
	cmd    *exec.Cmd
	log    lockedBuffer // stdout and stderr, unless the caller set them
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

// startProcess starts cmd.
func startProcess(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, exited: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.log
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.log
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-p.exited
			}
		}
		if t.Failed() {
			t.Logf("%s's output:\n%s", filepath.Base(cmd.Path), p.log.String())
		}
	})
	return p
}

// wait waits for the process to exit and returns Wait's error; after 15s
// it kills it and fails the test.
func (p *process) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("%s still running after 15s", filepath.Base(p.cmd.Path))
		return nil
	}
}

// shutdown sends sig and checks the daemon exits cleanly.
func (p *process) shutdown(t *testing.T, sig os.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	p.exitedCleanly(t)
}

// exitedCleanly waits for the daemon's exit and checks it was a clean one:
// status 0, after logging so.
func (p *process) exitedCleanly(t *testing.T) {
	t.Helper()
	if err := p.wait(t); err != nil || !strings.Contains(p.log.String(), "shut down cleanly") {
		t.Errorf("exit %v, log:\n%s", err, p.log.String())
	}
}

// waitLog waits until the output has n matches of substr.
func (p *process) waitLog(t *testing.T, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(p.log.String(), substr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q (x%d) in the output after 10s:\n%s", substr, n, p.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// daemon is the built binary, serving.
type daemon struct {
	*process
	config        string // its configuration file
	public, admin string // where it serves; admin is "" when disabled
}

// startDaemon writes cfg to a configuration file in a temporary directory
// and runs the built daemon on it, with systemd's variables left out of its
// environment and env added. It returns once the daemon serves: the public
// listener, and the admin one if cfg has one.
func startDaemon(t *testing.T, cfg string, env ...string) *daemon {
	t.Helper()
	c, err := config.Decode(strings.NewReader(cfg))
	if err != nil {
		t.Fatalf("the test's configuration: %v", err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemonBinary(t), "-config", path)
	cmd.Env = daemonEnv(env...)
	d := &daemon{process: startProcess(t, cmd), config: path}
	serving := regexp.MustCompile(`serving announces on (\S+)\n`)
	admin := regexp.MustCompile(`serving admin on (\S+)\n`)
	deadline := time.Now().Add(10 * time.Second)
	for d.public == "" || (c.AdminAddr != "" && d.admin == "") {
		log := d.log.String()
		if m := serving.FindStringSubmatch(log); m != nil {
			d.public = m[1]
		}
		if m := admin.FindStringSubmatch(log); m != nil {
			d.admin = m[1]
		}
		select {
		case <-d.exited:
			t.Fatalf("the daemon exited (%v) before serving:\n%s", d.err, log)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon does not serve after 10s:\n%s", log)
		}
	}
	return d
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

// skipUnlessCI skips the test for want of something this machine lacks,
// which reason names. Under CI (CI=true) every test must run: there it
// fails the test instead.
func skipUnlessCI(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: CI must run this test", reason)
	}
	t.Skip(reason)
}

// needProgram returns the path of the program name, from the Debian
// package pkg, or skips the test (fails it under CI) if it is missing.
// `make test` installs the packages (scripts/test-deps.sh).
func needProgram(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; isExecutable(p) { // not on a user's PATH
		return p
	}
	skipUnlessCI(t, fmt.Sprintf("%s is not installed (Debian package %s; `make test` installs it as root)", name, pkg))
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&0o111 != 0
}

// needIPv6Loopback skips the test (fails it under CI) if ::1 cannot be
// listened on.
func needIPv6Loopback(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		skipUnlessCI(t, fmt.Sprintf("this machine has no IPv6 loopback: %v", err))
		return
	}
	l.Close()
}

// freePort returns a port that is free on 127.0.0.1 for both TCP and UDP,
// for a program that must be told its port.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP on 127.0.0.1 in 20 tries")
	return 0
}

// waitPort waits until addr accepts TCP connections; p, if not nil, is the
// process that should be listening there: its exit fails the test at once.
func waitPort(t *testing.T, addr string, p *process) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		if p != nil {
			select {
			case <-p.exited:
				t.Fatalf("%s exited (%v) before listening on %s:\n%s", filepath.Base(p.cmd.Path), p.err, addr, p.log.String())
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 15s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
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

// announceTarget is a leecher's announce.
const announceTarget = "/announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-CD0303-aaaaaaaaaaaa&port=6882&uploaded=0&downloaded=0&left=5"

// rawGet sends request, as it is, to addr and returns all the answer.
func rawGet(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, request)
	b, _ := io.ReadAll(c)
	return string(b)
}

// decodeBody checks resp is a 200 and decodes its bencoded body.
func decodeBody(t *testing.T, resp string) map[string]any {
	t.Helper()
	_, body, ok := strings.Cut(resp, "\r\n\r\n")
	if !ok || !strings.HasPrefix(resp, "HTTP/1.") || !strings.Contains(resp, " 200 OK\r\n") {
		t.Fatalf("response %q", resp)
	}
	var m map[string]any
	if err := bencode.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return m
}

// lockedBuffer is a bytes.Buffer safe for exec.Cmd's writer goroutine and
// the test reading it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
