package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/chihaya/chihaya/bench/workload"
)

// BEP 15's numbers.
const (
	protocolID     = 0x41727101980
	actionConnect  = 0
	actionAnnounce = 1
	actionError    = 3
	// connectionLife is how long a connection_id is used: BEP 15 lets a
	// client keep one for a minute.
	connectionLife = 50 * time.Second
)

// batchConn sends and receives datagrams in batches.
type batchConn interface {
	// writeBatch sends msgs and returns how many were sent.
	writeBatch(msgs [][]byte) (int, error)
	// readBatch receives up to len(bufs) datagrams into bufs, their sizes
	// into sizes, and returns how many it received, at least one unless it
	// fails (as when the connection's read deadline passes).
	readBatch(bufs [][]byte, sizes []int) (int, error)
}

// plainConn sends and receives one datagram per system call.
type plainConn struct{ c *net.UDPConn }

func (p plainConn) writeBatch(msgs [][]byte) (int, error) {
	for n, m := range msgs {
		if _, err := p.c.Write(m); err != nil {
			return n, err
		}
	}
	return len(msgs), nil
}

func (p plainConn) readBatch(bufs [][]byte, sizes []int) (int, error) {
	n, err := p.c.Read(bufs[0])
	if err != nil {
		return 0, err
	}
	sizes[0] = n
	return 1, nil
}

// udpWorker announces over one connected UDP socket, o.window announces at
// a time: it sends them as one batch and waits for their answers, or for
// o.lost, before the next batch.
type udpWorker struct {
	o       *options
	id      int
	c       *net.UDPConn
	bc      batchConn
	cid     uint64 // the tracker's connection_id
	cidAt   time.Time
	tx      uint32
	out     [][]byte
	in      [][]byte
	sizes   []int
	pending []bool
	urlData []byte // BEP 41: the target's path and query, if any
}

func newUDPWorker(o *options, id int) *udpWorker {
	w := &udpWorker{o: o, id: id, tx: uint32(id) << 24}
	if p := o.target.RequestURI(); o.target.Path != "" && p != "/" {
		w.urlData = []byte(p)
	}
	for range o.window {
		w.out = append(w.out, make([]byte, 0, 100+len(w.urlData)))
		w.in = append(w.in, make([]byte, 2048))
	}
	w.sizes = make([]int, o.window)
	w.pending = make([]bool, o.window)
	return w
}

func (w *udpWorker) work(p *phase, t *tally) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(w.o.addr))
	if err != nil {
		t.error(err)
		return
	}
	defer c.Close()
	c.SetReadBuffer(1 << 20)
	w.c = c
	w.bc = newBatchConn(c, w.o.mmsg)
	for !p.over(time.Now()) {
		if time.Since(w.cidAt) > connectionLife {
			if err := w.connect(); err != nil {
				t.error(err)
				return
			}
		}
		if !w.round(p, t) {
			return
		}
	}
}

// connect asks for a connection_id, trying three times.
func (w *udpWorker) connect() error {
	var req [16]byte
	binary.BigEndian.PutUint64(req[0:], protocolID)
	binary.BigEndian.PutUint32(req[8:], actionConnect)
	buf := w.in[0]
	for range 3 {
		w.tx++
		binary.BigEndian.PutUint32(req[12:], w.tx)
		if _, err := w.c.Write(req[:]); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		w.c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, err := w.c.Read(buf)
			if err != nil {
				break // timed out, or refused: once more
			}
			if n >= 16 && binary.BigEndian.Uint32(buf) == actionConnect && binary.BigEndian.Uint32(buf[4:]) == w.tx {
				w.cid, w.cidAt = binary.BigEndian.Uint64(buf[8:]), time.Now()
				return nil
			}
		}
	}
	return fmt.Errorf("connect: no answer from %v", w.o.addr)
}

// round sends one batch of announces and collects their answers. It
// returns false when the phase has no more requests.
func (w *udpWorker) round(p *phase, t *tally) bool {
	n := 0
	for n < len(w.out) {
		i, ok := p.take()
		if !ok {
			break
		}
		w.out[n] = w.appendAnnounce(w.out[n][:0], w.tx+uint32(n), i)
		w.pending[n] = true
		n++
	}
	if n == 0 {
		return false
	}
	base := w.tx
	w.tx += uint32(n)
	start := time.Now()
	for sent := 0; sent < n; {
		k, err := w.bc.writeBatch(w.out[sent:n])
		if err != nil {
			// Lost with the rest of the batch (as when nothing listens).
			for range n - sent {
				t.error(err)
			}
			time.Sleep(10 * time.Millisecond)
			return true
		}
		sent += k
	}
	w.c.SetReadDeadline(start.Add(w.o.lost))
	for left := n; left > 0; {
		k, err := w.bc.readBatch(w.in, w.sizes)
		if err != nil {
			lost := fmt.Errorf("%d of %d announces unanswered: %w", left, n, err)
			for range left {
				t.error(lost)
			}
			break
		}
		now := time.Now()
		for j := range k {
			b := w.in[j][:w.sizes[j]]
			if len(b) < 8 {
				continue
			}
			slot := binary.BigEndian.Uint32(b[4:]) - base
			if slot >= uint32(n) || !w.pending[slot] {
				continue // a late answer to an earlier batch
			}
			w.pending[slot] = false
			left--
			switch binary.BigEndian.Uint32(b) {
			case actionAnnounce:
				t.answer(false, len(b), now.Sub(start))
			case actionError:
				t.answer(true, len(b), now.Sub(start))
				if t.firstErr == nil {
					t.firstErr = errors.New("tracker error: " + string(b[8:]))
				}
			default:
				t.error(fmt.Errorf("unexpected action %d", binary.BigEndian.Uint32(b)))
			}
		}
	}
	return true
}

// appendAnnounce appends request i's BEP 15 announce with transaction id
// tx.
func (w *udpWorker) appendAnnounce(b []byte, tx uint32, i int) []byte {
	p := workload.Request(i, w.o.torrents)
	h, id := workload.InfoHash(p.Torrent), p.PeerID()
	b = binary.BigEndian.AppendUint64(b, w.cid)
	b = binary.BigEndian.AppendUint32(b, actionAnnounce)
	b = binary.BigEndian.AppendUint32(b, tx)
	b = append(b, h[:]...)
	b = append(b, id[:]...)
	b = binary.BigEndian.AppendUint64(b, p.Downloaded)
	b = binary.BigEndian.AppendUint64(b, p.Left)
	b = binary.BigEndian.AppendUint64(b, p.Uploaded)
	b = binary.BigEndian.AppendUint32(b, 0) // event: none
	b = binary.BigEndian.AppendUint32(b, 0) // ip: the sender's
	b = binary.BigEndian.AppendUint32(b, uint32(i))
	b = binary.BigEndian.AppendUint32(b, uint32(w.o.numwant))
	b = binary.BigEndian.AppendUint16(b, p.Port)
	if len(w.urlData) > 0 {
		b = append(b, 2, byte(len(w.urlData))) // BEP 41: URLData
		b = append(b, w.urlData...)
	}
	return b
}
