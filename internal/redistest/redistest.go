// Package redistest runs real, throw-away Redis servers for tests: a single
// redis-server, or a Redis Cluster of three masters, each in a temporary
// directory, listening on a free port of 127.0.0.1 and nowhere else, with
// persistence off. Servers are stopped by PID when the test ends; Stop,
// Kill, Pause (SIGSTOP) and Restart simulate outages.
//
// The binaries come from the Debian packages redis-server and redis-tools
// (redis-cli, which creates clusters). When they are missing a test is
// skipped, naming the packages to install, except when the environment
// says CI=true: there it fails, so a CI machine without Redis can never
// pass by skipping.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/internal/testserver"
)

// Packages are the Debian packages that provide the binaries.
const Packages = "redis-server redis-tools"

// ErrNotInstalled is returned when redis-server or redis-cli cannot be found.
var ErrNotInstalled = errors.New("redistest: redis-server or redis-cli not found (install the Debian packages " + Packages + ")")

// Where the binaries are looked for, besides $PATH.
var (
	serverPaths = []string{"/usr/bin/redis-server", "/usr/sbin/redis-server"}
	cliPaths    = []string{"/usr/bin/redis-cli"}
)

// Server is one running (or stopped) redis-server.
type Server struct {
	// Addr is its address, always on 127.0.0.1.
	Addr string

	proc testserver.Process
}

// skipOrFail stops tb for a missing server: a failure on CI, a skip elsewhere.
func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	testserver.SkipOrFail(tb, err, ErrNotInstalled, Packages)
}

// Start starts a single redis-server of the test's own, stopped when the
// test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start(tb.TempDir(), nil)
	if err != nil {
		skipOrFail(tb, err)
	}
	testserver.StopAtEnd(tb, "redis-server", s.Stop)
	return s
}

// start runs a server in dir with extra arguments, on a free port: one that
// is free when chosen can be taken before the server binds it, so a failed
// start is tried again on another.
func start(dir string, extra []string) (*Server, error) {
	bin := testserver.Find(serverPaths, "redis-server")
	if bin == "" || testserver.Find(cliPaths, "redis-cli") == "" {
		return nil, ErrNotInstalled
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		s.proc = testserver.Process{Name: "redis-server", Bin: bin, Dir: dir, Log: filepath.Join(dir, "redis.log")}
		s.proc.Args = append([]string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--dir", dir,
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
			"--logfile", filepath.Join(dir, "redis.log"),
		}, extra...)
		err = s.start()
		if err == nil {
			return s, nil
		}
		if attempt == 3 {
			return nil, err
		}
	}
}

// freePort returns a free port of 127.0.0.1 whose cluster bus port (the
// port plus 10000) is free too.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+10000 > 65535 {
			continue
		}
		if bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			bus.Close()
			return port, nil
		}
	}
	return 0, errors.New("redistest: no free port with a free cluster bus port")
}

// start runs redis-server and waits until it answers PING.
func (s *Server) start() error {
	return s.proc.Start(20*time.Second, func() error {
		reply, err := s.do("PING")
		if err == nil && reply != "+PONG" {
			err = fmt.Errorf("PING answered %q", reply)
		}
		return err
	})
}

// Do sends one command (inline form: arguments without spaces) and
// returns the first line of the reply, with bulk strings' contents
// appended after a newline.
func (s *Server) Do(args ...string) (string, error) { return s.do(args...) }

func (s *Server) do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return line, nil
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return "", err
		}
		return line + "\n" + string(body[:n]), nil
	}
	if strings.HasPrefix(line, "-") {
		return line, fmt.Errorf("redistest: %s: %s", strings.Join(args, " "), line[1:])
	}
	return line, nil
}

// Info returns the value of one field of INFO (e.g. "used_memory").
func (s *Server) Info(field string) (string, error) {
	reply, err := s.do("INFO")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(reply, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("redistest: INFO has no field %q", field)
}

// Pause freezes the server (SIGSTOP): connections stay open and nothing
// answers, as with a server stuck or cut off. Resume continues it.
func (s *Server) Pause() error { return s.proc.Signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.proc.Signal(syscall.SIGCONT) }

// Stop shuts the server down (SIGTERM to its PID, SIGKILL after 10s) and
// waits for it to exit. Restart brings it back on the same address and
// directory; with persistence off, its data is gone.
func (s *Server) Stop() error { return s.proc.Stop(syscall.SIGTERM, 10*time.Second) }

// Kill ends the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() error { return s.proc.Stop(syscall.SIGKILL, 10*time.Second) }

// Restart starts a stopped server again, on the same address and directory.
func (s *Server) Restart() error { return testserver.Retry(10, s.start) }

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// StartCluster starts a cluster of three masters (redis-server
// --cluster-enabled yes, three times, then redis-cli --cluster create),
// each in a directory of the test's own, and waits until every node
// reports cluster_state:ok. The nodes are stopped when the test ends.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c := &Cluster{}
	tb.Cleanup(func() {
		for _, n := range c.Nodes {
			if err := n.Stop(); err != nil {
				tb.Errorf("stopping cluster node %s: %v", n.Addr, err)
			}
		}
	})
	for range 3 {
		n, err := start(tb.TempDir(), []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000",
		})
		if err != nil {
			skipOrFail(tb, err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(testserver.Find(cliPaths, "redis-cli"), args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := c.WaitOK(30 * time.Second); err != nil {
		tb.Fatal(err)
	}
	return c
}

// WaitOK waits until every node reports cluster_state:ok and knows every
// other node, as after a node came back.
func (c *Cluster) WaitOK(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var bad string
		for _, n := range c.Nodes {
			reply, err := n.do("CLUSTER", "INFO")
			switch {
			case err != nil:
				bad = fmt.Sprintf("%s: %v", n.Addr, err)
			case !strings.Contains(reply, "cluster_state:ok"):
				bad = n.Addr + ": cluster_state not ok"
			case !strings.Contains(reply, fmt.Sprintf("cluster_known_nodes:%d", len(c.Nodes))):
				bad = n.Addr + ": does not know every node yet"
			}
			if bad != "" {
				break
			}
		}
		if bad == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: cluster not ok after %v: %s", timeout, bad)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
