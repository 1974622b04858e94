package systemd

import (
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		n     int
		names []string
		want  string // roles joined by ",", or the error's start
	}{
		{0, nil, ""},
		{1, nil, "public"},
		{2, nil, "public,admin"},
		{2, []string{"chihaya.socket", "chihaya.socket"}, "public,admin"},
		{1, []string{"public"}, "public"},
		{1, []string{"admin"}, "admin"},
		{2, []string{"admin", "public"}, "admin,public"},
		{3, nil, "error: socket activation: 3 sockets passed"},
		{2, []string{"public"}, "error: socket activation: LISTEN_FDNAMES names 1 sockets"},
		{2, []string{"public", "metrics"}, `error: socket activation: socket 1 is named "metrics"`},
		{2, []string{"public", "public"}, `error: socket activation: two sockets are named "public"`},
	} {
		var got string
		r, err := roles(tc.n, tc.names)
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = strings.Join(r, ",")
		}
		if !strings.HasPrefix(got, tc.want) || (err == nil && got != tc.want) {
			t.Errorf("roles(%d, %q) = %s, want %s", tc.n, tc.names, got, tc.want)
		}
	}
}

// passSockets puts listeners for n loopback sockets at n consecutive
// descriptors from 200, as systemd would from 3, and returns their
// addresses.
func passSockets(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Dup3(int(f.Fd()), 200+i, 0); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		f.Close()
		l.Close()
	}
	t.Cleanup(func() {
		for i := range n {
			syscall.Close(200 + i)
		}
	})
	return addrs
}

func fakeEnv(vars map[string]string) (func(string) string, func(string) error) {
	return func(k string) string { return vars[k] }, func(k string) error { delete(vars, k); return nil }
}

func TestListeners(t *testing.T) {
	addrs := passSockets(t, 2)
	pid := os.Getpid()
	env := map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "admin:public"}
	getenv, unsetenv := fakeEnv(env)
	ls, err := listeners(getenv, unsetenv, pid, 200)
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != 0 {
		t.Errorf("variables left set: %v", env)
	}
	for role, addr := range map[string]string{Admin: addrs[0], Public: addrs[1]} {
		l := ls[role]
		if l == nil || l.Addr().String() != addr {
			t.Fatalf("%s listener %v, want one on %s", role, l, addr)
		}
		go func() {
			if c, err := net.Dial("tcp", addr); err == nil {
				io.WriteString(c, role)
				c.Close()
			}
		}()
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(c); string(b) != role {
			t.Errorf("%s listener accepted a connection that said %q", role, b)
		}
		c.Close()
		l.Close()
	}
	// The passed descriptors are closed; the listeners had close-on-exec
	// duplicates (closed above).
	for fd := 200; fd < 202; fd++ {
		if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0); errno != syscall.EBADF {
			t.Errorf("descriptor %d left open", fd)
		}
	}
}

func TestListenersNotForUs(t *testing.T) {
	pid := os.Getpid()
	for _, env := range []map[string]string{
		{},
		{"LISTEN_PID": strconv.Itoa(pid + 1), "LISTEN_FDS": "1"},
		{"LISTEN_PID": "x", "LISTEN_FDS": "1"},
	} {
		before := len(env)
		getenv, unsetenv := fakeEnv(env)
		if ls, err := listeners(getenv, unsetenv, pid, 200); ls != nil || err != nil {
			t.Errorf("%v: %v, %v", env, ls, err)
		}
		if len(env) != before {
			t.Errorf("another process's variables were unset: %v", env)
		}
	}
}

func TestListenersErrors(t *testing.T) {
	pid := os.Getpid()
	// A datagram socket cannot be a listener.
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := udp.(*net.UDPConn).File()
	syscall.Dup3(int(f.Fd()), 210, 0)
	f.Close()
	udp.Close()
	defer syscall.Close(210)
	for _, tc := range []struct {
		fds, names, want string
		first            int
	}{
		// Descriptors from 900 on are not open: closing them is harmless.
		{"x", "", `LISTEN_FDS "x"`, 900},
		{"3", "", "3 sockets passed", 900},
		{"1", "public:admin", "LISTEN_FDNAMES names 2 sockets", 900},
		{"1", "public", "file descriptor 210 (public): not a listening stream socket", 210},
	} {
		env := map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": tc.fds, "LISTEN_FDNAMES": tc.names}
		getenv, unsetenv := fakeEnv(env)
		ls, err := listeners(getenv, unsetenv, pid, tc.first)
		if ls != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LISTEN_FDS=%s LISTEN_FDNAMES=%s: %v, %v; want an error containing %q", tc.fds, tc.names, ls, err, tc.want)
		}
	}
}
