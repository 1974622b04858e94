package http

import (
	"errors"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Lazy deadlines.
//
// Because http.go sets all four of net/http's timeouts, net/http moves a
// keep-alive connection's read deadline five or six times per request (the
// header and whole-request deadlines, none for the background read that
// watches for a hang-up, a past one to stop that read, none again, the idle
// deadline) and its write deadline twice. Each move goes down to the
// runtime's poller, which re-arms, moves or stops a timer under locks: in a
// keep-alive announce profile that was about 6% of the CPU. Re-measured on
// Go 1.26.8 (2026-12-01) against a build that passes every deadline
// straight to the socket, at a million stored peers, in five interleaved
// rounds on loopback: 7.5% less CPU per keep-alive announce (median 14.3
// against 15.5 µs; four of the five pairs 7% or more), none for
// Connection: close. It stays while it buys 5% or more. The deadlines
// are coarse protections against slow and idle clients, measured in
// seconds, so trackedConn keeps them lazily: setting one only records it,
// and the socket's deadline changes only when a Read or Write is about to
// run under one that is too late (by more than slack) or earlier than
// wanted, or when a Read or Write under way must be cut short. A busy
// connection re-arms its timers about once per slack interval rather than
// several times per request; when net/http's background read has already
// reached the socket, stopping it still costs a past deadline and, for
// the next Read, a new one.
//
// Deadlines are kept as nanoseconds on the monotonic clock since
// clockBase, so that the wanted one fits in an atomic (Read runs in
// net/http's background-read goroutine while the serving goroutine moves
// the deadline) and costs no allocation; 0 is no deadline.

// maxSlack is how much later than wanted a deadline may fire at most. A
// second is small beside the protections it serves (5s read and write
// timeouts, 60s idle, by default) and long beside a request on a busy
// connection, which therefore re-arms its timers about once a second
// whatever its request rate. An operator may choose much shorter timeouts,
// so slack is also at most a quarter of the time left: a 200ms timeout
// fires at most 50ms late.
const maxSlack = int64(time.Second)

var clockBase = time.Now()

// monotime is now, on the clock of encodeDeadline.
func monotime() int64 { return int64(time.Since(clockBase)) }

func encodeDeadline(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	if d := int64(t.Sub(clockBase)); d != 0 {
		return d
	}
	return -1 // clockBase itself: past, and not "none"
}

func decodeDeadline(d int64) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return clockBase.Add(time.Duration(d))
}

// slack is how much later than w, wanted at now, a deadline may be applied.
func slack(w, now int64) int64 {
	return max(0, min(maxSlack, (w-now)/4))
}

// covers reports whether the applied deadline a serves for a wanted w:
// it is no earlier (a Read would fail before its time) and no later by
// more than the slack.
// A wanted "none" is served by any applied deadline still to come: should
// that fire, the Read or Write applies "none" and carries on.
func covers(a, w, now int64) bool {
	if w == 0 {
		return a == 0 || a > now
	}
	return a != 0 && a >= w && a-w <= slack(w, now)
}

// target is the deadline to apply for a wanted w: w plus the slack, so that
// wanted deadlines moving forward by less than the slack reuse it.
func target(w, now int64) int64 {
	if w == 0 {
		return 0
	}
	s := slack(w, now)
	if w > math.MaxInt64-s {
		return math.MaxInt64
	}
	return w + s
}

// lazyDeadline is one direction (read or write) of a trackedConn's
// deadlines.
type lazyDeadline struct {
	want   atomic.Int64 // what the last Set asked for
	active atomic.Int32 // Reads (Writes) under way

	mu         sync.Mutex // serializes changes to the socket's deadline
	applied    int64      // what the socket has
	appliedFor int64      // the wanted deadline applied was chosen for
}

// set records t. A Read (Write) under way in another goroutine would run
// to the applied deadline: if that is too late for t, t is applied at
// once, as a past deadline must be to interrupt it (net/http stops its
// background read so). With nothing under way, the next Read (Write) sees
// t first (active is incremented before want is read, and both are
// sequentially consistent), and a past t never reaches the socket.
func (d *lazyDeadline) set(c net.Conn, write bool, t time.Time) error {
	d.want.Store(encodeDeadline(t))
	if d.active.Load() == 0 {
		return nil
	}
	now := monotime()
	d.mu.Lock()
	defer d.mu.Unlock()
	w, a := d.want.Load(), d.applied
	if w == 0 || w == d.appliedFor || (a != 0 && a <= w+slack(w, now)) {
		// Not too late: an early one is reapplied when it fires.
		return nil
	}
	return d.apply(c, write, w, now)
}

// apply gives the socket the deadline for w. The caller holds mu.
func (d *lazyDeadline) apply(c net.Conn, write bool, w, now int64) error {
	dl := target(w, now)
	var err error
	if write {
		err = c.SetWriteDeadline(decodeDeadline(dl))
	} else {
		err = c.SetReadDeadline(decodeDeadline(dl))
	}
	if err == nil {
		d.applied, d.appliedFor = dl, w
	}
	return err
}

// ready prepares the socket for a Read (Write): it reports
// os.ErrDeadlineExceeded if the wanted deadline has passed, and applies
// the wanted one unless the applied one serves for it (chosen for it, or
// covering it) and force does not say that the applied one fired early.
// Chosen for it: a client sending its request a byte at a time must not
// cost a timer update per byte as the slack shrinks. Errors applying are
// ignored, as net/http ignores them (the Read or Write reports the broken
// connection), unless the applied deadline fired early.
func (d *lazyDeadline) ready(c net.Conn, write, force bool) error {
	now := monotime()
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.want.Load()
	if w != 0 && w <= now {
		return os.ErrDeadlineExceeded
	}
	if !force && (w == d.appliedFor || covers(d.applied, w, now)) {
		return nil
	}
	if err := d.apply(c, write, w, now); err != nil && force {
		return err // rather than retry under the deadline that fired
	}
	return nil
}

// early reports whether err is a deadline that fired before the one now
// wanted: one applied earlier, that the wanted deadline has since moved
// beyond.
func (d *lazyDeadline) early(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	w := d.want.Load()
	return w == 0 || w > monotime()
}

// Read reads under the wanted read deadline, applied lazily.
func (c *trackedConn) Read(p []byte) (int, error) {
	c.rd.active.Add(1)
	defer c.rd.active.Add(-1)
	force := false
	for {
		if err := c.rd.ready(c.Conn, false, force); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(p)
		c.head.scan(p[:n])
		if err == nil || !c.rd.early(err) {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
		force = true
	}
}

// Write writes under the wanted write deadline, applied lazily. A
// deadline that fires early interrupts nothing: the rest is written.
func (c *trackedConn) Write(p []byte) (int, error) {
	if c.head.tooLong(p) {
		return c.writeURITooLong(len(p))
	}
	c.wd.active.Add(1)
	defer c.wd.active.Add(-1)
	written, force := 0, false
	for {
		if err := c.wd.ready(c.Conn, true, force); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(p[written:])
		written += n
		if err == nil || !c.wd.early(err) {
			return written, err
		}
		if written == len(p) {
			return written, nil
		}
		force = true
	}
}

// SetReadDeadline records t for the Reads to come; see lazyDeadline.set.
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	return c.rd.set(c.Conn, false, t)
}

// SetWriteDeadline records t for the Writes to come; see lazyDeadline.set.
func (c *trackedConn) SetWriteDeadline(t time.Time) error {
	return c.wd.set(c.Conn, true, t)
}

// SetDeadline records t for both directions.
func (c *trackedConn) SetDeadline(t time.Time) error {
	return errors.Join(c.rd.set(c.Conn, false, t), c.wd.set(c.Conn, true, t))
}
