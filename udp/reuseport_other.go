//go:build !linux

package udp

// reusePort is nil where the frontend does not use SO_REUSEPORT: Listen
// opens a single socket.
var reusePort func(fd uintptr) error
