package http

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// drain lets Shutdown finish every request that has started to arrive.
//
// net/http's own Shutdown drops a request whose headers it finishes reading
// after the shutdown began (it closes the connection unanswered), and closes
// keep-alive connections a request may be arriving on. A restart under
// systemd, where the next daemon takes over the same socket, should lose
// nothing, so Shutdown first stops accepting (new connections wait in the
// socket's backlog, or are refused), turns keep-alives off (idle
// connections close; answers say "Connection: close"), and waits for every
// connection that is reading or answering a request to finish before it
// hands over to net/http's Shutdown.
type drain struct {
	busy atomic.Int64 // connections in StateNew or StateActive

	mu        sync.Mutex
	listeners []*drainListener
}

// listen wraps l so that accepted connections are tracked and Shutdown can
// close it first. At most maxConns accepted connections are open at once
// (0: no cap).
func (d *drain) listen(l net.Listener, maxConns int) net.Listener {
	dl := &drainListener{Listener: l, drain: d, done: make(chan struct{})}
	if maxConns > 0 {
		dl.slots = make(chan struct{}, maxConns)
	}
	d.mu.Lock()
	d.listeners = append(d.listeners, dl)
	d.mu.Unlock()
	return dl
}

// track is called by the server's ConnState hook.
func (d *drain) track(c net.Conn, state http.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	busy := state == http.StateNew || state == http.StateActive
	if tc.busy.Swap(busy) != busy {
		if busy {
			d.busy.Add(1)
		} else {
			d.busy.Add(-1)
		}
	}
}

// shutdown stops accepting, disables keep-alives and waits until no
// connection is busy or ctx ends, then runs srv's own Shutdown.
func (d *drain) shutdown(ctx context.Context, srv *http.Server) error {
	d.mu.Lock()
	for _, l := range d.listeners {
		l.Close()
	}
	d.mu.Unlock()
	srv.SetKeepAlivesEnabled(false)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for d.busy.Load() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	return srv.Shutdown(ctx)
}

// drainListener is a listener whose Close makes Serve return
// http.ErrServerClosed, as a graceful shutdown does.
//
// It also caps the open connections (max_connections): Accept takes a
// slot before it accepts, and a connection gives its slot back when it
// closes. With every slot taken, Accept waits, and new connections queue
// in the kernel's backlog, to be served as others close: nobody is
// refused, and a flood of idle connections costs at most the cap's
// goroutines and buffers.
type drainListener struct {
	net.Listener
	drain     *drain
	slots     chan struct{} // one value per open connection; nil: no cap
	done      chan struct{} // closed by Close
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

func (l *drainListener) Accept() (net.Conn, error) {
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, http.ErrServerClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		if l.slots != nil {
			<-l.slots
		}
		if l.closed.Load() {
			return nil, http.ErrServerClosed
		}
		return nil, err
	}
	// Busy from the start: Shutdown must not miss a connection accepted
	// just before the listener closed, whose StateNew is still to come.
	tc := &trackedConn{Conn: c, slots: l.slots}
	tc.busy.Store(true)
	l.drain.busy.Add(1)
	return tc, nil
}

func (l *drainListener) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		close(l.done)
		l.closeErr = l.Listener.Close()
	})
	return l.closeErr
}

// trackedConn carries whether its connection is busy, and keeps its
// deadlines lazily (deadline.go): net/http moves them several times per
// request, and each move costs a runtime timer update.
type trackedConn struct {
	net.Conn
	busy     atomic.Bool
	rd, wd   lazyDeadline
	head     headScan      // where the request being read is: see headlimit.go
	slots    chan struct{} // its listener's connection slots: Close frees one
	released atomic.Bool
}

// Close closes the connection and frees its slot under max_connections.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	if c.slots != nil && c.released.CompareAndSwap(false, true) {
		<-c.slots
	}
	return err
}

// CloseWrite half-closes a TCP connection, as net/http does before closing
// one it answered with an error.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
