package udp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2): Go pads it to
// the alignment of Msghdr, as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// sockaddrLen holds a sockaddr_in6, the larger of the two families.
const sockaddrLen = unix.SizeofSockaddrInet6

// mmsg is the Linux batcher: one recvmmsg reads up to a batch of
// datagrams, one sendmmsg sends their answers (more calls only when the
// socket's send buffer is full). The answers go to the source addresses
// exactly as the kernel gave them.
type mmsg struct {
	rc    syscall.RawConn
	ps    []packet
	names [][sockaddrLen]byte
	rhdrs []mmsghdr
	riovs []unix.Iovec
	whdrs []mmsghdr
	wiovs []unix.Iovec

	// The system calls run in closures made once, not per batch: a
	// closure passed to RawConn.Read escapes, and would be allocated.
	readFn, writeFn func(fd uintptr) bool
	n               int   // read: datagrams received
	err             error // read: its error
	wn, woff        int   // write: answers to send, sent so far
}

func newBatcher(conn *net.UDPConn, size int) (batcher, error) {
	if size <= 1 {
		return newSingle(conn), nil
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &mmsg{
		rc:    rc,
		ps:    newPackets(size),
		names: make([][sockaddrLen]byte, size),
		rhdrs: make([]mmsghdr, size),
		riovs: make([]unix.Iovec, size),
		whdrs: make([]mmsghdr, size),
		wiovs: make([]unix.Iovec, size),
	}
	for i := range b.rhdrs {
		h := &b.rhdrs[i].hdr
		h.Name = &b.names[i][0]
		h.Iov = &b.riovs[i]
		h.SetIovlen(1)
		b.riovs[i].Base = &b.ps[i].in[0]
		b.riovs[i].SetLen(len(b.ps[i].in))
		b.whdrs[i].hdr.Iov = &b.wiovs[i]
		b.whdrs[i].hdr.SetIovlen(1)
	}
	b.readFn = b.recv
	b.writeFn = b.send
	return b, nil
}

func (b *mmsg) packets() []packet { return b.ps }

func (b *mmsg) read() (int, error) {
	for i := range b.rhdrs {
		b.rhdrs[i].hdr.Namelen = sockaddrLen
		b.rhdrs[i].hdr.Flags = 0
	}
	b.n, b.err = 0, nil
	if err := b.rc.Read(b.readFn); err != nil {
		return 0, err
	}
	if b.err != nil {
		return 0, b.err
	}
	for i := range b.n {
		p := &b.ps[i]
		p.in = p.in[:b.rhdrs[i].n]
		p.from = sockaddr(b.names[i][:b.rhdrs[i].hdr.Namelen])
	}
	return b.n, nil
}

// recv is readFn: it reports false when there is nothing to read yet, so
// that the runtime's poller waits for the socket.
func (b *mmsg) recv(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rhdrs[0])), uintptr(len(b.rhdrs)), 0, 0, 0)
		switch errno {
		case 0:
			b.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		b.err = errno
		return true
	}
}

func (b *mmsg) write(n int) {
	b.wn, b.woff = 0, 0
	for i := range n {
		p := &b.ps[i]
		if len(p.out) == 0 {
			continue
		}
		h := &b.whdrs[b.wn]
		h.hdr.Name = &b.names[i][0]
		h.hdr.Namelen = b.rhdrs[i].hdr.Namelen
		b.wiovs[b.wn].Base = &p.out[0]
		b.wiovs[b.wn].SetLen(len(p.out))
		b.wn++
	}
	if b.wn > 0 {
		b.rc.Write(b.writeFn) // fails only on a closed socket: the answers are lost with it
	}
}

// send is writeFn: it sends whdrs[woff:wn], waiting (false) while the
// socket's buffer is full, and skips a datagram the kernel refuses.
func (b *mmsg) send(fd uintptr) bool {
	for b.woff < b.wn {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.whdrs[b.woff])), uintptr(b.wn-b.woff), 0, 0, 0)
		switch errno {
		case 0:
			b.woff += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			b.woff++ // this one cannot go (no route, a bad address): the rest can
		}
	}
	return true
}

// sockaddr reads a sockaddr_in or sockaddr_in6.
func sockaddr(b []byte) netip.AddrPort {
	if len(b) < 4 {
		return netip.AddrPort{}
	}
	port := binary.BigEndian.Uint16(b[2:4])
	switch *(*uint16)(unsafe.Pointer(&b[0])) { // sa_family, in the host's byte order
	case unix.AF_INET:
		if len(b) >= unix.SizeofSockaddrInet4 {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
		}
	case unix.AF_INET6:
		if len(b) >= unix.SizeofSockaddrInet6 {
			return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), port)
		}
	}
	return netip.AddrPort{}
}
