package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The roles of passed sockets, and the names a socket unit gives them with
// FileDescriptorName=. A datagram socket named Public serves UDP: one
// socket unit can then hold both the HTTP and the UDP socket of "addr" and
// "udp_addr", since FileDescriptorName= names all of a unit's sockets alike.
const (
	Public = "public" // announces and scrapes over HTTP (the config's addr)
	Admin  = "admin"  // the operators' listener (admin_addr)
	UDP    = "udp"    // announces and scrapes over UDP (udp_addr)
)

// listenFDsStart is the first file descriptor systemd passes.
const listenFDsStart = 3

// Sockets are the sockets systemd passed, by the role the daemon gives
// them; nil fields were not passed.
type Sockets struct {
	Public net.Listener
	Admin  net.Listener
	UDP    []*net.UDPConn
}

// Close closes every socket.
func (s *Sockets) Close() {
	for _, l := range []net.Listener{s.Public, s.Admin} {
		if l != nil {
			l.Close()
		}
	}
	for _, c := range s.UDP {
		c.Close()
	}
}

// Listeners returns the sockets systemd passed to this process, or nil
// when it passed none. They are passed when $LISTEN_PID is this process's
// id: $LISTEN_FDS sockets from file descriptor 3 on, named by
// $LISTEN_FDNAMES (colon-separated).
//
// Stream sockets are Public or Admin, datagram sockets UDP. When no socket
// is named "public", "admin" or "udp" (FileDescriptorName= not set: systemd
// then names them all after the unit), the first stream socket is the
// public one and the second the admin one. Otherwise every socket must
// carry one of those names, a stream socket at most once each.
//
// The variables are unset once read, so that neither a child process nor a
// second call takes the sockets again. The passed descriptors are closed:
// the sockets returned hold close-on-exec duplicates of them.
func Listeners() (*Sockets, error) {
	return listeners(os.Getenv, os.Unsetenv, os.Getpid(), listenFDsStart)
}

func listeners(getenv func(string) string, unsetenv func(string) error, pid, firstFD int) (*Sockets, error) {
	pidVar := getenv("LISTEN_PID")
	if pidVar == "" {
		return nil, nil
	}
	if p, err := strconv.Atoi(pidVar); err != nil || p != pid {
		return nil, nil // another process's sockets: the variables leaked to us
	}
	fdsVar, namesVar := getenv("LISTEN_FDS"), getenv("LISTEN_FDNAMES")
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		unsetenv(v)
	}
	n, err := strconv.Atoi(fdsVar)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("LISTEN_FDS %q: want a number of file descriptors", fdsVar)
	}
	closeFrom := func(fd int) {
		for ; fd < firstFD+n; fd++ {
			syscall.Close(fd)
		}
	}
	var names []string
	if namesVar != "" {
		names = strings.Split(namesVar, ":")
	}
	if names != nil && len(names) != n {
		closeFrom(firstFD)
		return nil, fmt.Errorf("socket activation: LISTEN_FDNAMES names %d sockets, LISTEN_FDS passes %d", len(names), n)
	}
	datagram := make([]bool, n)
	for i := range datagram {
		typ, err := syscall.GetsockoptInt(firstFD+i, syscall.SOL_SOCKET, syscall.SO_TYPE)
		if err != nil {
			closeFrom(firstFD)
			return nil, fmt.Errorf("socket activation: file descriptor %d: not a socket: %w", firstFD+i, err)
		}
		datagram[i] = typ == syscall.SOCK_DGRAM
	}
	roles, err := roles(datagram, names)
	if err != nil {
		closeFrom(firstFD)
		return nil, err
	}
	s := &Sockets{}
	for i, role := range roles {
		fd := firstFD + i
		f := os.NewFile(uintptr(fd), "systemd:"+role)
		err := s.add(role, f) // takes a duplicate of fd
		f.Close()
		if err != nil {
			s.Close()
			closeFrom(fd + 1)
			return nil, fmt.Errorf("socket activation: file descriptor %d (%s): %w", fd, role, err)
		}
	}
	return s, nil
}

// add takes a duplicate of f's socket in its role.
func (s *Sockets) add(role string, f *os.File) error {
	if role == UDP {
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return fmt.Errorf("not a datagram socket: %w", err)
		}
		c, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return fmt.Errorf("a %s socket, not UDP", pc.LocalAddr().Network())
		}
		s.UDP = append(s.UDP, c)
		return nil
	}
	l, err := net.FileListener(f)
	if err != nil {
		return fmt.Errorf("not a listening stream socket: %w", err)
	}
	if role == Public {
		s.Public = l
	} else {
		s.Admin = l
	}
	return nil
}

// roles says which role each passed socket has, from whether it is a
// datagram socket and from the sockets' names: one each, or nil when
// $LISTEN_FDNAMES is unset.
func roles(datagram []bool, names []string) ([]string, error) {
	n := len(datagram)
	named := false
	for _, name := range names {
		named = named || name == Public || name == Admin || name == UDP
	}
	out := make([]string, n)
	streams := 0
	seen := map[string]bool{}
	for i, dgram := range datagram {
		switch {
		case dgram && (!named || names[i] == Public || names[i] == UDP):
			out[i] = UDP
			continue
		case !named && streams < 2:
			out[i] = []string{Public, Admin}[streams]
		case !named:
			return nil, fmt.Errorf("socket activation: %d stream sockets passed, at most 2 can be used (public, admin); name them with FileDescriptorName=", streams+1)
		case names[i] != Public && names[i] != Admin:
			return nil, fmt.Errorf("socket activation: socket %d is named %q: want %q, %q or %q (FileDescriptorName=)", i, names[i], Public, Admin, UDP)
		case seen[names[i]]:
			return nil, fmt.Errorf("socket activation: two stream sockets are named %q", names[i])
		default:
			out[i] = names[i]
		}
		if dgram {
			return nil, fmt.Errorf("socket activation: socket %d is named %q, but the %s listener is a stream socket", i, names[i], names[i])
		}
		seen[out[i]] = true
		streams++
	}
	return out, nil
}
