package http

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/config"
)

// TestMaxConnections: with max_connections open, the next connection is
// not refused but waits, unserved, in the backlog, and is served once one
// of the others closes.
func TestMaxConnections(t *testing.T) {
	const max = 3
	addr, _ := serve(t, true, func(c *config.Config) { c.MaxConnections = max })
	var held []net.Conn
	for i := range max {
		c, br := dial(t, addr)
		io.WriteString(c, announceRequest(i))
		if ok, err := readAnswer(br); !ok || err != nil {
			t.Fatalf("connection %d: answer ok=%v, %v", i, ok, err)
		}
		held = append(held, c)
	}
	c, br := dial(t, addr) // the kernel completes the handshake: the backlog
	io.WriteString(c, announceRequest(max))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.Peek(1); !isTimeout(err) {
		t.Fatalf("a connection past max_connections was served or dropped: %v", err)
	}
	held[0].Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if ok, err := readAnswer(br); !ok || err != nil {
		t.Fatalf("after one closed, the waiting connection: answer ok=%v, %v", ok, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// raiseFileLimit lifts the soft limit on open files to the hard one, and
// fails the test if that is below want.
func raiseFileLimit(t *testing.T, want uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	if lim.Cur < want {
		t.Fatalf("RLIMIT_NOFILE is %d, below the %d this test needs: raise the hard limit (ulimit -Hn)", lim.Cur, want)
	}
}

// heapNow is the Go heap's live objects and the goroutine stacks, once
// collections no longer change them: a collection frees the stacks of
// goroutines that ended before it began and, one collection after their
// finalizers ran, the objects that had them; the second empties what
// sync.Pools kept through the first.
func heapNow() uint64 {
	var last uint64
	for i := range 20 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		v := m.HeapAlloc + m.StackInuse
		if i >= 2 && v <= last+last/100 && v+v/100 >= last {
			return v
		}
		last = v
	}
	return last
}

// TestSlowlorisHeld: 5,000 connections that are idle or sending their
// request a byte at a time (slowloris) do not stop announces from other
// clients (p99 under 50 ms while they are held), and once they go the
// goroutines return to their starting level (see flood). The Go heap's
// return is TestSlowlorisMemoryReturns's, which the race detector would
// blur.
func TestSlowlorisHeld(t *testing.T) {
	addr := serveForFlood(t)
	flood(t, addr, floodSize, runtime.NumGoroutine())
}

// floodSize is how many connections a flood holds.
const floodSize = 5000

// serveForFlood starts a test tracker on loopback, with room for a
// flood's connections, and warms it up: the first announces make the
// pools and the swarm.
func serveForFlood(t *testing.T) string {
	t.Helper()
	raiseFileLimit(t, 2*floodSize+200)
	// Not serve's countingListener, which keeps every connection.
	s := newTestServer(t, func(c *config.Config) { c.ReadTimeout = config.Duration{Duration: 10 * time.Second} })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	addr := l.Addr().String()
	warm, warmBR := dial(t, addr)
	for i := range 50 {
		io.WriteString(warm, announceRequest(i))
		if ok, err := readAnswer(warmBR); !ok || err != nil {
			t.Fatalf("warm-up announce: ok=%v, %v", ok, err)
		}
	}
	warm.Close()
	time.Sleep(100 * time.Millisecond)
	return addr
}

// flood holds n connections to addr, half idle and half slowloris, for
// three seconds (under http_read_timeout: the server keeps them all),
// announcing meanwhile from other clients: a keep-alive one, and a new
// connection for every tenth announce. It then closes them and waits
// until the goroutines are back to goroutines.
func flood(t *testing.T, addr string, n, goroutines int) {
	t.Helper()
	const hold = 3 * time.Second
	attackers := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range attackers {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("attacker %d: %v", i, err)
		}
		attackers = append(attackers, c)
		if i%2 == 1 { // slowloris: a request line that never ends
			io.WriteString(c, "GET /announce?info_hash=")
		}
	}

	var lat []time.Duration
	keep, keepBR := dial(t, addr)
	defer keep.Close()
	deadline := time.Now().Add(hold)
	for i := 0; time.Now().Before(deadline); i++ {
		if i%40 == 0 { // the slowloris connections drip a byte
			for j := 1; j < len(attackers); j += 2 {
				attackers[j].Write([]byte("a"))
			}
		}
		c, br := keep, keepBR
		if i%10 == 0 { // not dial, whose Cleanup would keep every connection to the end
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			c, br = nc, bufio.NewReader(nc)
		}
		start := time.Now()
		io.WriteString(c, announceRequest(i%50)) // the warm-up's peers: the swarm stays as it was
		ok, err := readAnswer(br)
		lat = append(lat, time.Since(start))
		if !ok || err != nil {
			t.Fatalf("announce %d while attacked: ok=%v, %v", i, ok, err)
		}
		if c != keep {
			c.Close()
		}
	}
	held := runtime.NumGoroutine()
	heldHeap := heapNow()
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("%d announces while %d connections were held (%d goroutines, heap and stacks %d KiB): p50 %v, p99 %v, max %v",
		len(lat), n, held, heldHeap>>10, lat[len(lat)/2], p99, lat[len(lat)-1])
	if p99 > 50*time.Millisecond {
		t.Errorf("p99 %v while attacked, want under 50ms", p99)
	}
	if held < n {
		t.Errorf("%d goroutines while %d connections were held: the server did not take them all", held, n)
	}

	for _, c := range attackers {
		c.Close()
	}
	attackers = nil
	keep.Close()
	g := 0
	for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		if g = runtime.NumGoroutine(); g <= goroutines {
			return
		}
	}
	t.Errorf("%d goroutines after the attackers left, %d before", g, goroutines)
}
