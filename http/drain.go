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
// close it first.
func (d *drain) listen(l net.Listener) net.Listener {
	dl := &drainListener{Listener: l, drain: d}
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
type drainListener struct {
	net.Listener
	drain     *drain
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

func (l *drainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		if l.closed.Load() {
			return nil, http.ErrServerClosed
		}
		return nil, err
	}
	// Busy from the start: Shutdown must not miss a connection accepted
	// just before the listener closed, whose StateNew is still to come.
	tc := &trackedConn{Conn: c}
	tc.busy.Store(true)
	l.drain.busy.Add(1)
	return tc, nil
}

func (l *drainListener) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		l.closeErr = l.Listener.Close()
	})
	return l.closeErr
}

// trackedConn carries whether its connection is busy, and keeps its
// deadlines lazily (deadline.go): net/http moves them several times per
// request, and each move costs a runtime timer update.
type trackedConn struct {
	net.Conn
	busy   atomic.Bool
	rd, wd lazyDeadline
}

// CloseWrite half-closes a TCP connection, as net/http does before closing
// one it answered with an error.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
