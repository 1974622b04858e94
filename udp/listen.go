package udp

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"syscall"
)

// readBuffer is the receive buffer asked for each socket: room for a burst
// of a few thousand announces while the reader is busy. The kernel caps it
// at net.core.rmem_max.
const readBuffer = 4 << 20

// Listen opens the UDP sockets for addr (":PORT" serves IPv4 and IPv6):
// where the system has SO_REUSEPORT, one per CPU (GOMAXPROCS) bound to the
// same address, among which the kernel spreads clients by their address,
// so that each gets a reader goroutine of its own (Serve each one);
// elsewhere one.
func Listen(addr string) ([]*net.UDPConn, error) {
	n := 1
	if reusePort != nil {
		n = runtime.GOMAXPROCS(0)
	}
	return listen(addr, n)
}

// listen opens n sockets on addr, sharing it with SO_REUSEPORT if n > 1.
func listen(addr string, n int) ([]*net.UDPConn, error) {
	var lc net.ListenConfig
	if n > 1 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = reusePort(fd) }); err != nil {
				return err
			}
			return serr
		}
	}
	var conns []*net.UDPConn
	for i := range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("udp_addr: %w", err)
		}
		c := pc.(*net.UDPConn)
		c.SetReadBuffer(readBuffer)
		conns = append(conns, c)
		if i == 0 {
			// The others bind to the port the first got, should addr
			// have asked for any (":0").
			addr = c.LocalAddr().String()
		}
	}
	return conns, nil
}
