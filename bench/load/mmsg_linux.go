package main

import (
	"net"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of sendmmsg(2) and recvmmsg(2); Go pads it as
// C does.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// mmsgConn sends and receives a batch of datagrams per system call.
type mmsgConn struct {
	rc   syscall.RawConn
	hdrs []mmsghdr
	iovs []unix.Iovec
}

// newBatchConn returns c batched with sendmmsg/recvmmsg, or one datagram
// per system call when mmsg is false.
func newBatchConn(c *net.UDPConn, mmsg bool) batchConn {
	if !mmsg {
		return plainConn{c}
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return plainConn{c}
	}
	return &mmsgConn{rc: rc}
}

// point sets the headers to bufs (their lengths for sending, their
// capacities for receiving).
func (m *mmsgConn) point(bufs [][]byte, capacity bool) {
	if len(m.hdrs) < len(bufs) {
		m.hdrs = make([]mmsghdr, len(bufs))
		m.iovs = make([]unix.Iovec, len(bufs))
	}
	for j, b := range bufs {
		n := len(b)
		if capacity {
			n = cap(b)
		}
		m.iovs[j].Base = unsafe.SliceData(b[:cap(b)])
		m.iovs[j].SetLen(n)
		m.hdrs[j] = mmsghdr{}
		m.hdrs[j].hdr.Iov = &m.iovs[j]
		m.hdrs[j].hdr.SetIovlen(1)
	}
}

// call runs sendmmsg or recvmmsg over the first n headers, waiting for the
// socket to be ready (and so honouring its deadlines) when it is not.
func (m *mmsgConn) call(trap uintptr, n int) (int, error) {
	var got int
	var errno syscall.Errno
	f := func(fd uintptr) bool {
		r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(n), 0, 0, 0)
		got, errno = int(r), e
		return e != unix.EAGAIN
	}
	var err error
	if trap == unix.SYS_SENDMMSG {
		err = m.rc.Write(f)
	} else {
		err = m.rc.Read(f)
	}
	runtime.KeepAlive(m.iovs)
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return got, nil
}

func (m *mmsgConn) writeBatch(msgs [][]byte) (int, error) {
	m.point(msgs, false)
	return m.call(unix.SYS_SENDMMSG, len(msgs))
}

func (m *mmsgConn) readBatch(bufs [][]byte, sizes []int) (int, error) {
	m.point(bufs, true)
	n, err := m.call(unix.SYS_RECVMMSG, len(bufs))
	for j := range n {
		sizes[j] = int(m.hdrs[j].len)
	}
	return n, err
}
