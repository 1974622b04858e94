package http

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chihaya/chihaya/config"
)

// aLongTimeAgo is the past deadline net/http sets to interrupt a Read.
var aLongTimeAgo = time.Unix(1, 0)

// countingConn counts the deadline changes that reach the connection.
type countingConn struct {
	net.Conn
	read, write, past atomic.Int64
}

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.read.Add(1)
	if !t.IsZero() && !t.After(time.Now()) {
		c.past.Add(1)
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.write.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

func (c *countingConn) SetDeadline(t time.Time) error {
	c.read.Add(1)
	c.write.Add(1)
	return c.Conn.SetDeadline(t)
}

func (c *countingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *countingConn) calls() int64 { return c.read.Load() + c.write.Load() }

// countingListener hands out countingConns.
type countingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*countingConn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, cc)
	l.mu.Unlock()
	return cc, nil
}

func (l *countingListener) only(t testing.TB) *countingConn {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) != 1 {
		t.Fatalf("%d connections accepted, want 1", len(l.conns))
	}
	return l.conns[0]
}

// serve starts the public server of a test tracker (http.go's timeouts,
// cfg adjusted by mutate) on loopback, or, unless lazy, a plain
// http.Server with the same handler and timeouts and no trackedConn.
func serve(t testing.TB, lazy bool, mutate func(*config.Config)) (addr string, l *countingListener) {
	t.Helper()
	s := newTestServer(t, mutate)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l = &countingListener{Listener: raw}
	if lazy {
		go s.Serve(l)
		t.Cleanup(func() { s.srv.Close() })
	} else {
		plain := &http.Server{
			Handler:           s.srv.Handler,
			ReadHeaderTimeout: s.srv.ReadHeaderTimeout,
			ReadTimeout:       s.srv.ReadTimeout,
			WriteTimeout:      s.srv.WriteTimeout,
			IdleTimeout:       s.srv.IdleTimeout,
		}
		go plain.Serve(l)
		t.Cleanup(func() { plain.Close() })
	}
	return raw.Addr().String(), l
}

// dial connects to addr, with a client-side deadline as a safety net.
func dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// readAnswer reads one response off br without allocating, and reports
// whether its status was 200.
func readAnswer(br *bufio.Reader) (ok bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	ok = bytes.HasPrefix(line, []byte("HTTP/1.1 200 "))
	length := -1
	for {
		if line, err = br.ReadSlice('\n'); err != nil {
			return false, err
		}
		if len(line) <= 2 {
			break
		}
		if v, found := bytes.CutPrefix(line, []byte("Content-Length: ")); found {
			length = 0
			for _, b := range bytes.TrimSpace(v) {
				length = length*10 + int(b-'0')
			}
		}
	}
	if length < 0 {
		return false, errors.New("no Content-Length")
	}
	_, err = br.Discard(length)
	return ok, err
}

func announceRequest(peer int) string {
	return "GET /announce?" + benchQuery(peer) + " HTTP/1.1\r\nHost: t\r\n\r\n"
}

// TestLazyDeadlinesSpareTheTimers: 1000 keep-alive announces through the
// real Server move the socket's deadlines far less often than a plain
// http.Server with the same timeouts does (5-8 times per request).
// Besides about one change per slack interval, the lazy connection changes
// them only to interrupt net/http's background read when that read has
// reached the socket (a past deadline, applied at once) and to restore
// them afterwards: how often that happens depends on scheduling, so it is
// counted apart.
func TestLazyDeadlinesSpareTheTimers(t *testing.T) {
	const n = 1000
	count := func(lazy bool) *countingConn {
		addr, l := serve(t, lazy, nil)
		c, br := dial(t, addr)
		req := announceRequest(1)
		for i := range n {
			io.WriteString(c, req)
			if ok, err := readAnswer(br); !ok || err != nil {
				t.Fatalf("lazy=%v: request %d: ok=%v, %v", lazy, i, ok, err)
			}
		}
		return l.only(t)
	}
	plain, lazy := count(false), count(true)
	interrupts := lazy.past.Load()
	t.Logf("%d requests: plain %d deadline changes (%d read, %d write), lazy %d (%d read, %d write; %d interrupts of the background read)",
		n, plain.calls(), plain.read.Load(), plain.write.Load(), lazy.calls(), lazy.read.Load(), lazy.write.Load(), interrupts)
	if plain.calls() < 5*n {
		t.Fatalf("the plain server made only %d deadline changes for %d requests: the test no longer measures net/http", plain.calls(), n)
	}
	if rest := lazy.calls() - 2*interrupts; rest > n/100+10 {
		t.Errorf("lazy: %d deadline changes besides the %d interrupts and their restores, want at most %d", rest, interrupts, n/100+10)
	}
	if lazy.calls() > plain.calls()/5 {
		t.Errorf("lazy: %d deadline changes, more than a fifth of plain's %d", lazy.calls(), plain.calls())
	}
}

// TestLazyDeadlinesStillCutOffClients: through the real Server with short
// timeouts, slow and idle clients are cut off no earlier than the timeout
// and no later than the timeout plus the slack (a quarter of it here) and
// a margin for a loaded machine.
func TestLazyDeadlinesStillCutOffClients(t *testing.T) {
	const (
		readTimeout = 250 * time.Millisecond
		idleTimeout = 300 * time.Millisecond
		margin      = 400 * time.Millisecond
	)
	addr, _ := serve(t, true, func(c *config.Config) {
		c.ReadTimeout.Duration = readTimeout
		c.WriteTimeout.Duration = readTimeout
		c.IdleTimeout.Duration = idleTimeout
	})
	req := announceRequest(1)
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		// client starts talking on c and returns when the server's
		// timeout began (at the latest).
		client func(t *testing.T, c net.Conn, br *bufio.Reader, dialed time.Time) time.Time
	}{
		{"half a request line, then silence", readTimeout, func(t *testing.T, c net.Conn, br *bufio.Reader, dialed time.Time) time.Time {
			io.WriteString(c, req[:20])
			return dialed
		}},
		{"a request dripping a byte every 20ms", readTimeout, func(t *testing.T, c net.Conn, br *bufio.Reader, dialed time.Time) time.Time {
			stop := make(chan struct{})
			t.Cleanup(func() { close(stop) })
			go func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for i := 0; i < len(req); i++ {
					if _, err := c.Write([]byte{req[i]}); err != nil {
						return
					}
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			}()
			return dialed
		}},
		{"an idle keep-alive connection", idleTimeout, func(t *testing.T, c net.Conn, br *bufio.Reader, dialed time.Time) time.Time {
			for range 3 {
				io.WriteString(c, req)
				if ok, err := readAnswer(br); !ok || err != nil {
					t.Fatalf("request: ok=%v, %v", ok, err)
				}
			}
			return time.Now()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dialed := time.Now()
			c, br := dial(t, addr)
			began := tc.client(t, c, br, dialed)
			// The server closes the connection, after a 400 for a
			// partial request as net/http always did.
			_, err := io.Copy(io.Discard, br)
			took := time.Since(began)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the server did not close the connection: %v", err)
			}
			// Lower bound: the server's timeout began at most a few
			// milliseconds before began (the idle case).
			lo, hi := tc.timeout-20*time.Millisecond, tc.timeout+tc.timeout/4+margin
			if took < lo || took > hi {
				t.Errorf("cut off after %v, want %v to %v", took, lo, hi)
			}
		})
	}
}

// TestPipelinedRequestsAnswered: two requests sent at once on one
// connection are both answered, again and again: net/http reads the
// second while it answers the first, and then interrupts that read with a
// past deadline, or finds it already done.
func TestPipelinedRequestsAnswered(t *testing.T) {
	addr, _ := serve(t, true, nil)
	c, br := dial(t, addr)
	pair := announceRequest(1) + announceRequest(2)
	for i := range 50 {
		io.WriteString(c, pair)
		for j := range 2 {
			if ok, err := readAnswer(br); !ok || err != nil {
				t.Fatalf("pair %d, request %d: ok=%v, %v", i, j, ok, err)
			}
		}
	}
}

// tcpPair returns the two ends of a loopback TCP connection, the server's
// wrapped in a trackedConn over a countingConn.
func tcpPair(t *testing.T) (tc *trackedConn, cc *countingConn, peer net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	cc = &countingConn{Conn: c}
	tc = &trackedConn{Conn: cc}
	t.Cleanup(func() { tc.Close() })
	return tc, cc, peer
}

type ioResult struct {
	n   int
	err error
	at  time.Time
}

// blockedRead starts a Read of tc in a goroutine and returns once that
// Read is under way (and, most likely, waiting on the socket).
func blockedRead(tc *trackedConn, buf []byte) <-chan ioResult {
	done := make(chan ioResult, 1)
	go func() {
		n, err := tc.Read(buf)
		done <- ioResult{n, err, time.Now()}
	}()
	for tc.rd.active.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	return done
}

// TestPastDeadlineInterruptsRead: a past read deadline interrupts at once
// a Read blocked in another goroutine, whatever deadline it was blocked
// under, and the connection reads again once the deadline is lifted. With
// no Read under way, the past deadline stays off the socket and the next
// Read fails at once all the same.
func TestPastDeadlineInterruptsRead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		under time.Time // the deadline the Read blocks under
	}{
		{"no deadline", time.Time{}},
		{"a far deadline", time.Now().Add(time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cc, peer := tcpPair(t)
			c.SetReadDeadline(tc.under)
			done := blockedRead(c, make([]byte, 1))
			set := time.Now()
			c.SetReadDeadline(aLongTimeAgo)
			select {
			case r := <-done:
				if !errors.Is(r.err, os.ErrDeadlineExceeded) {
					t.Errorf("interrupted Read: %d, %v, want a timeout", r.n, r.err)
				}
				if d := r.at.Sub(set); d > 200*time.Millisecond {
					t.Errorf("the Read returned %v after the past deadline", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a past deadline did not interrupt the Read")
			}
			if cc.past.Load() != 1 {
				t.Errorf("%d past deadlines reached the socket, want 1", cc.past.Load())
			}
			c.SetReadDeadline(time.Time{})
			io.WriteString(peer, "x")
			buf := make([]byte, 1)
			if n, err := c.Read(buf); n != 1 || err != nil {
				t.Errorf("Read after the deadline was lifted: %d, %v", n, err)
			}
		})
	}
	t.Run("no Read under way", func(t *testing.T) {
		c, cc, peer := tcpPair(t)
		io.WriteString(peer, "xy")
		buf := make([]byte, 1)
		c.Read(buf)
		before := cc.read.Load()
		c.SetReadDeadline(aLongTimeAgo)
		if n, err := c.Read(buf); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read after a past deadline: %d, %v, want a timeout", n, err)
		}
		if d := cc.read.Load() - before; d != 0 {
			t.Errorf("%d read deadline changes reached the socket, want none", d)
		}
		c.SetReadDeadline(time.Time{})
		if n, err := c.Read(buf); n != 1 || err != nil || buf[0] != 'y' {
			t.Errorf("Read after the deadline was lifted: %d %q, %v", n, buf[:n], err)
		}
	})
}

// TestEarlyDeadlineRetried: a Read or Write under way when its deadline is
// moved later, or lifted, keeps the earlier deadline it started with; when
// that one fires it is not an error: the later one is applied and the
// Read waits on, the Write carries on with what is left to write.
func TestEarlyDeadlineRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		later time.Time
	}{
		{"a later deadline", time.Now().Add(10 * time.Second)},
		{"no deadline", time.Time{}},
	} {
		t.Run("Read, "+tc.name, func(t *testing.T) {
			c, cc, peer := tcpPair(t)
			c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			done := blockedRead(c, make([]byte, 1))
			c.SetReadDeadline(tc.later)
			time.Sleep(400 * time.Millisecond) // past the first deadline and its slack
			io.WriteString(peer, "x")
			r := <-done
			if r.n != 1 || r.err != nil {
				t.Errorf("Read: %d, %v, want a byte", r.n, r.err)
			}
			if got := cc.read.Load(); got != 2 {
				t.Errorf("%d read deadline changes reached the socket, want 2 (the first, then the later)", got)
			}
		})
		t.Run("Write, "+tc.name, func(t *testing.T) {
			// net.Pipe writes only as fast as its peer reads.
			a, peer := net.Pipe()
			defer a.Close()
			defer peer.Close()
			peer.SetDeadline(time.Now().Add(5 * time.Second))
			cc := &countingConn{Conn: a}
			c := &trackedConn{Conn: cc}
			c.SetWriteDeadline(time.Now().Add(150 * time.Millisecond))
			done := make(chan ioResult, 1)
			go func() {
				n, err := c.Write([]byte("0123456789"))
				done <- ioResult{n, err, time.Now()}
			}()
			got := make([]byte, 10)
			if _, err := io.ReadFull(peer, got[:3]); err != nil {
				t.Fatal(err)
			}
			c.SetWriteDeadline(tc.later)
			time.Sleep(400 * time.Millisecond)
			if _, err := io.ReadFull(peer, got[3:]); err != nil {
				t.Fatal(err)
			}
			if r := <-done; r.n != 10 || r.err != nil {
				t.Errorf("Write: %d, %v, want 10", r.n, r.err)
			}
			if string(got) != "0123456789" {
				t.Errorf("the peer read %q", got)
			}
			if got := cc.write.Load(); got != 2 {
				t.Errorf("%d write deadline changes reached the pipe, want 2 (the first, then the later)", got)
			}
		})
	}
}

// TestDeadlineFiresWithinSlack: a Read or Write that cannot complete fails
// with a timeout no earlier than its deadline and no later than the slack
// (a quarter of the time given, at most a second) and a margin.
func TestDeadlineFiresWithinSlack(t *testing.T) {
	const margin = 300 * time.Millisecond
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		write   bool
	}{
		{"Read, 150ms", 150 * time.Millisecond, false},
		{"Read, 400ms", 400 * time.Millisecond, false},
		{"Write, 150ms", 150 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, peer := net.Pipe()
			defer a.Close()
			defer peer.Close()
			c := &trackedConn{Conn: a}
			start := time.Now()
			var err error
			if tc.write {
				c.SetWriteDeadline(start.Add(tc.timeout))
				_, err = c.Write([]byte("x"))
			} else {
				c.SetReadDeadline(start.Add(tc.timeout))
				_, err = c.Read(make([]byte, 1))
			}
			took := time.Since(start)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%v, want a timeout", err)
			}
			if lo, hi := tc.timeout, tc.timeout+tc.timeout/4+margin; took < lo || took > hi {
				t.Errorf("timed out after %v, want %v to %v", took, lo, hi)
			}
		})
	}
}

// nopConn reads and writes at once, and accepts any deadline.
type nopConn struct{}

func (nopConn) Read(p []byte) (int, error)       { return len(p), nil }
func (nopConn) Write(p []byte) (int, error)      { return len(p), nil }
func (nopConn) Close() error                     { return nil }
func (nopConn) LocalAddr() net.Addr              { return nil }
func (nopConn) RemoteAddr() net.Addr             { return nil }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }

// keepAliveRequest makes the deadline calls net/http makes for one
// keep-alive request (server.go, conn.serve and readRequest), with the
// background read interrupted before it started.
func keepAliveRequest(c *trackedConn, buf []byte) error {
	now := time.Now()
	c.SetReadDeadline(now.Add(60 * time.Second)) // idle
	c.Read(buf)                                  // the next request arrives
	c.SetReadDeadline(now.Add(5 * time.Second))  // header
	c.SetReadDeadline(now.Add(5 * time.Second))  // whole request
	c.SetWriteDeadline(now.Add(5 * time.Second))
	c.SetReadDeadline(time.Time{}) // background read
	c.Write(buf)
	c.SetReadDeadline(aLongTimeAgo) // abortPendingRead
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("the interrupted read did not time out")
	}
	c.SetReadDeadline(time.Time{})
	c.SetWriteDeadline(time.Time{})
	return nil
}

// TestDeadlinesReused: deadlines that move forward by less than the slack,
// or stay, are served by the one already applied.
func TestDeadlinesReused(t *testing.T) {
	buf := make([]byte, 1)
	for _, tc := range []struct {
		name        string
		run         func(c *trackedConn) error
		read, write int64 // at most, reaching the connection
	}{
		{"1000 keep-alive requests, deadlines as net/http sets them", func(c *trackedConn) error {
			for range 1000 {
				if err := keepAliveRequest(c, buf); err != nil {
					return err
				}
			}
			return nil
		}, 2, 2},
		{"1000 Reads under one short deadline (a client dripping its request)", func(c *trackedConn) error {
			c.SetReadDeadline(time.Now().Add(10 * time.Second / 4))
			for range 1000 {
				if _, err := c.Read(buf); err != nil {
					return err
				}
			}
			return nil
		}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := &countingConn{Conn: nopConn{}}
			if err := tc.run(&trackedConn{Conn: cc}); err != nil {
				t.Fatal(err)
			}
			if cc.read.Load() > tc.read || cc.write.Load() > tc.write {
				t.Errorf("%d read and %d write deadline changes reached the connection, want at most %d and %d",
					cc.read.Load(), cc.write.Load(), tc.read, tc.write)
			}
		})
	}
}

// TestLazyDeadlinesAllocatesNothing: the wrapper costs no allocation per
// request.
func TestLazyDeadlinesAllocatesNothing(t *testing.T) {
	c := &trackedConn{Conn: nopConn{}}
	buf := make([]byte, 1)
	if n := testing.AllocsPerRun(1000, func() { keepAliveRequest(c, buf) }); n != 0 {
		t.Errorf("a request's deadlines allocate %v times", n)
	}
}

// BenchmarkKeepAliveAnnounce: one client announcing again and again on
// one keep-alive connection over loopback, to the tracker's server with
// lazy deadlines and to a plain http.Server with the same handler and
// timeouts. The client's costs are in both.
func BenchmarkKeepAliveAnnounce(b *testing.B) {
	for _, lazy := range []bool{true, false} {
		name := "plain"
		if lazy {
			name = "lazy"
		}
		b.Run(name, func(b *testing.B) {
			addr, _ := serve(b, lazy, nil)
			c, br := dial(b, addr)
			c.SetDeadline(time.Time{})
			req := announceRequest(7)
			b.ReportAllocs()
			for b.Loop() {
				io.WriteString(c, req)
				if ok, err := readAnswer(br); !ok || err != nil {
					b.Fatalf("ok=%v, %v", ok, err)
				}
			}
		})
	}
}
