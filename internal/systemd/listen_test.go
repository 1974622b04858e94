package systemd

import (
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		kinds string // a letter per socket: s stream, d datagram
		names []string
		want  string // roles joined by ",", or the error's start
	}{
		{"", nil, ""},
		{"s", nil, "public"},
		{"ss", nil, "public,admin"},
		{"ss", []string{"chihaya.socket", "chihaya.socket"}, "public,admin"},
		{"s", []string{"public"}, "public"},
		{"s", []string{"admin"}, "admin"},
		{"ss", []string{"admin", "public"}, "admin,public"},
		{"d", nil, "udp"},
		{"sds", nil, "public,udp,admin"},
		{"sd", []string{"public", "public"}, "public,udp"},
		{"sdd", []string{"public", "udp", "public"}, "public,udp,udp"},
		{"sds", []string{"public", "public", "admin"}, "public,udp,admin"},
		{"sss", nil, "error: socket activation: 3 stream sockets passed"},
		{"ss", []string{"public", "metrics"}, `error: socket activation: socket 1 is named "metrics"`},
		{"ss", []string{"public", "public"}, `error: socket activation: two stream sockets are named "public"`},
		{"sd", []string{"public", "admin"}, `error: socket activation: socket 1 is named "admin", but the admin listener is a stream socket`},
		{"s", []string{"udp"}, `error: socket activation: socket 0 is named "udp"`},
	} {
		datagram := make([]bool, len(tc.kinds))
		for i, k := range tc.kinds {
			datagram[i] = k == 'd'
		}
		var got string
		r, err := roles(datagram, tc.names)
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = strings.Join(r, ",")
		}
		if !strings.HasPrefix(got, tc.want) || (err == nil && got != tc.want) {
			t.Errorf("roles(%s, %q) = %s, want %s", tc.kinds, tc.names, got, tc.want)
		}
	}
}

// passSockets puts loopback sockets at consecutive descriptors from 200,
// as systemd would from 3, a listening TCP socket for each 's' of kinds and
// a UDP socket for each 'd', and returns their addresses.
func passSockets(t *testing.T, kinds string) []string {
	t.Helper()
	var addrs []string
	for i, k := range kinds {
		var f *os.File
		var err error
		if k == 'd' {
			c, lerr := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if lerr != nil {
				t.Fatal(lerr)
			}
			f, err = c.File()
			addrs = append(addrs, c.LocalAddr().String())
			c.Close()
		} else {
			l, lerr := net.Listen("tcp", "127.0.0.1:0")
			if lerr != nil {
				t.Fatal(lerr)
			}
			f, err = l.(*net.TCPListener).File()
			addrs = append(addrs, l.Addr().String())
			l.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Dup3(int(f.Fd()), 200+i, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	t.Cleanup(func() {
		for i := range kinds {
			syscall.Close(200 + i)
		}
	})
	return addrs
}

func fakeEnv(vars map[string]string) (func(string) string, func(string) error) {
	return func(k string) string { return vars[k] }, func(k string) error { delete(vars, k); return nil }
}

func TestListeners(t *testing.T) {
	addrs := passSockets(t, "sds")
	pid := os.Getpid()
	env := map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "3", "LISTEN_FDNAMES": "admin:public:public"}
	getenv, unsetenv := fakeEnv(env)
	ls, err := listeners(getenv, unsetenv, pid, 200)
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != 0 {
		t.Errorf("variables left set: %v", env)
	}
	if len(ls.UDP) != 1 || ls.UDP[0].LocalAddr().String() != addrs[1] {
		t.Fatalf("UDP sockets %v, want one on %s", ls.UDP, addrs[1])
	}
	// The UDP socket receives what is sent to its address.
	if c, err := net.Dial("udp", addrs[1]); err == nil {
		c.Write([]byte(UDP))
		c.Close()
	}
	buf := make([]byte, 16)
	ls.UDP[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := ls.UDP[0].ReadFromUDP(buf); err != nil || string(buf[:n]) != UDP {
		t.Errorf("UDP socket read %q, %v", buf[:n], err)
	}
	ls.UDP[0].Close()
	for role, addr := range map[string]string{Admin: addrs[0], Public: addrs[2]} {
		l := map[string]net.Listener{Admin: ls.Admin, Public: ls.Public}[role]
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
	for fd := 200; fd < 203; fd++ {
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
	passSockets(t, "sss")
	// A datagram socket cannot be the admin listener.
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
		{"3", "", "3 stream sockets passed", 200},
		{"1", "public:admin", "LISTEN_FDNAMES names 2 sockets", 900},
		{"1", "admin", `socket 0 is named "admin", but the admin listener is a stream socket`, 210},
		{"1", "public", "file descriptor 900: not a socket", 900},
	} {
		env := map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": tc.fds, "LISTEN_FDNAMES": tc.names}
		getenv, unsetenv := fakeEnv(env)
		ls, err := listeners(getenv, unsetenv, pid, tc.first)
		if ls != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LISTEN_FDS=%s LISTEN_FDNAMES=%s: %v, %v; want an error containing %q", tc.fds, tc.names, ls, err, tc.want)
		}
	}
}
