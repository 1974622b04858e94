package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The names a socket unit gives its sockets with FileDescriptorName=.
const (
	Public = "public" // announces and scrapes (the config's addr)
	Admin  = "admin"  // the operators' listener (admin_addr)
)

// listenFDsStart is the first file descriptor systemd passes.
const listenFDsStart = 3

// Listeners returns the listening sockets systemd passed to this process,
// by name (Public, Admin), or none when it passed none. They are passed
// when $LISTEN_PID is this process's id: $LISTEN_FDS sockets from file
// descriptor 3 on, named by $LISTEN_FDNAMES (colon-separated).
//
// When no socket is named "public" or "admin" (FileDescriptorName= not
// set: systemd then names them all after the unit), the first socket is
// the public one and the second the admin one. Otherwise every socket must
// be named "public" or "admin", each at most once.
//
// The variables are unset once read, so that neither a child process nor a
// second call takes the sockets again. The passed descriptors are closed:
// the listeners hold close-on-exec duplicates of them.
func Listeners() (map[string]net.Listener, error) {
	return listeners(os.Getenv, os.Unsetenv, os.Getpid(), listenFDsStart)
}

func listeners(getenv func(string) string, unsetenv func(string) error, pid, firstFD int) (map[string]net.Listener, error) {
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
	var names []string
	if namesVar != "" {
		names = strings.Split(namesVar, ":")
	}
	roles, err := roles(n, names)
	if err != nil {
		for fd := firstFD; fd < firstFD+n; fd++ {
			syscall.Close(fd)
		}
		return nil, err
	}
	ls := make(map[string]net.Listener, n)
	for i, role := range roles {
		fd := firstFD + i
		f := os.NewFile(uintptr(fd), "systemd:"+role)
		l, err := net.FileListener(f) // a duplicate of fd
		f.Close()
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			for fd++; fd < firstFD+n; fd++ {
				syscall.Close(fd)
			}
			return nil, fmt.Errorf("socket activation: file descriptor %d (%s): not a listening stream socket: %w", firstFD+i, role, err)
		}
		ls[role] = l
	}
	return ls, nil
}

// roles says which listener each of n passed sockets is, from their names
// (nil when $LISTEN_FDNAMES is unset).
func roles(n int, names []string) ([]string, error) {
	if names != nil && len(names) != n {
		return nil, fmt.Errorf("socket activation: LISTEN_FDNAMES names %d sockets, LISTEN_FDS passes %d", len(names), n)
	}
	named := false
	for _, name := range names {
		named = named || name == Public || name == Admin
	}
	if !named {
		if n > 2 {
			return nil, fmt.Errorf("socket activation: %d sockets passed, at most 2 can be used (public, admin); name them with FileDescriptorName=", n)
		}
		return []string{Public, Admin}[:n], nil
	}
	seen := map[string]bool{}
	for i, name := range names {
		if name != Public && name != Admin {
			return nil, fmt.Errorf("socket activation: socket %d is named %q: want %q or %q (FileDescriptorName=)", i, name, Public, Admin)
		}
		if seen[name] {
			return nil, fmt.Errorf("socket activation: two sockets are named %q", name)
		}
		seen[name] = true
	}
	return names, nil
}
