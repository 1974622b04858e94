package udp

import "golang.org/x/sys/unix"

// reusePort lets several sockets bind one address, the kernel spreading
// datagrams among them by the sender's address and port.
var reusePort = func(fd uintptr) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
}
