package ratelimit

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

var t0 = time.Now()

func at(d time.Duration) time.Time { return t0.Add(d) }

// TestBucket walks one address's bucket: a burst, then one request per
// interval, with the wait each refusal announces.
func TestBucket(t *testing.T) {
	l := New(0)
	a := netip.MustParseAddr("192.0.2.1")
	lim := Limit{Interval: time.Second, Burst: 3}
	for i, step := range []struct {
		at    time.Duration
		ok    bool
		retry time.Duration
	}{
		{0, true, 0},
		{0, true, 0},
		{0, true, 0},
		{0, false, time.Second},
		{300 * time.Millisecond, false, 700 * time.Millisecond},
		{time.Second, true, 0},
		{time.Second, false, time.Second},
		{2500 * time.Millisecond, true, 0},
		{2500 * time.Millisecond, false, 500 * time.Millisecond},
		{10 * time.Second, true, 0}, // idle long enough: a full bucket again
		{10 * time.Second, true, 0},
		{10 * time.Second, true, 0},
		{10 * time.Second, false, time.Second},
	} {
		ok, retry := l.Allow(a, at(step.at), lim)
		if ok != step.ok || retry != step.retry {
			t.Errorf("step %d at %v: Allow = %v, %v; want %v, %v", i, step.at, ok, retry, step.ok, step.retry)
		}
	}
}

// TestKeys: an IPv4 address is its own bucket, and an IPv6 one shares its
// /64's; a mapped IPv4 address is the IPv4 one.
func TestKeys(t *testing.T) {
	lim := Limit{Interval: time.Hour, Burst: 1}
	for _, tc := range []struct {
		first, second string
		shared        bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"2001:db8::1", "2001:db8::2", true},
		{"2001:db8::1", "2001:db8:0:0:ffff:ffff:ffff:ffff", true},
		{"2001:db8::1", "2001:db8:0:1::1", false},
		{"::c000:201", "192.0.2.1", false}, // an IPv6 address whose low bits are an IPv4 one
	} {
		l := New(0)
		l.Allow(netip.MustParseAddr(tc.first), t0, lim)
		ok, _ := l.Allow(netip.MustParseAddr(tc.second), t0, lim)
		if ok == tc.shared {
			t.Errorf("%s then %s: second allowed = %v, want shared bucket = %v", tc.first, tc.second, ok, tc.shared)
		}
	}
}

func TestNoLimit(t *testing.T) {
	l := New(8)
	a := netip.MustParseAddr("192.0.2.1")
	for _, lim := range []Limit{{}, {Interval: time.Second}, {Burst: 5}} {
		for range 100 {
			if ok, _ := l.Allow(a, t0, lim); !ok {
				t.Fatalf("%+v refused a request", lim)
			}
		}
	}
}

func TestPerSecond(t *testing.T) {
	for _, tc := range []struct {
		rps  float64
		want time.Duration
	}{{1, time.Second}, {20, 50 * time.Millisecond}, {0.5, 2 * time.Second}, {1.0 / 1800, 30 * time.Minute}} {
		if got := PerSecond(tc.rps, 4); got != (Limit{Interval: tc.want, Burst: 4}) {
			t.Errorf("PerSecond(%v, 4) = %+v, want interval %v", tc.rps, got, tc.want)
		}
	}
	for _, off := range [][2]float64{{0, 0}, {0, 5}, {1, 0}, {-1, 5}} {
		if got := PerSecond(off[0], int(off[1])); got != (Limit{}) {
			t.Errorf("PerSecond(%v, %v) = %+v, want the zero Limit", off[0], off[1], got)
		}
	}
}

// TestLazy: no table while the limit is off; one table, made once, after.
func TestLazy(t *testing.T) {
	var z Lazy
	a := netip.MustParseAddr("192.0.2.1")
	for range 10 {
		if ok, _ := z.Allow(a, t0, Limit{}); !ok || z.Entries() != 0 {
			t.Fatalf("with no limit: allowed %v, table of %d", ok, z.Entries())
		}
	}
	lim := Limit{Interval: time.Hour, Burst: 1}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { z.Allow(netip.MustParseAddr("198.51.100.1"), t0, lim) })
	}
	wg.Wait()
	if z.Entries() != DefaultEntries {
		t.Errorf("table of %d, want %d", z.Entries(), DefaultEntries)
	}
	if ok, _ := z.Allow(netip.MustParseAddr("198.51.100.1"), t0, lim); ok {
		t.Error("the four first requests did not share one table")
	}
}

func TestEntries(t *testing.T) {
	for _, tc := range []struct{ asked, want int }{{0, DefaultEntries}, {1, 8}, {9, 16}, {1000, 1024}, {1 << 20, 1 << 20}} {
		if got := New(tc.asked).Entries(); got != tc.want {
			t.Errorf("New(%d).Entries() = %d, want %d", tc.asked, got, tc.want)
		}
	}
}

// addr returns the i-th of many distinct addresses: IPv4 for even i,
// IPv6 (each in its own /64) for odd.
func addr(i int) netip.Addr {
	if i%2 == 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(i/2)+1<<24)
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	b[0], b[1] = 0x20, 0x01
	binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])|uint64(i))
	b[15] = 1
	return netip.AddrFrom16(b)
}

// TestMillionAddresses: a million distinct addresses, each making
// requests, grow nothing (the table is allocated once, and Allow
// allocates nothing), and an address over its limit stays limited
// through the flood: evicting the entry idle soonest never picks it.
func TestMillionAddresses(t *testing.T) {
	const n = 1_000_000
	l := New(0)
	lim := Limit{Interval: time.Second, Burst: 2}
	hot := netip.MustParseAddr("198.51.100.1")
	for l.Allow(hot, t0, lim); ; {
		if ok, _ := l.Allow(hot, t0, lim); !ok {
			break
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	allowed := 0
	for i := range n {
		// Each address over the next few milliseconds: all new, so allowed.
		if ok, _ := l.Allow(addr(i), at(time.Duration(i)*time.Microsecond/100), lim); ok {
			allowed++
		}
	}
	runtime.ReadMemStats(&after)
	if allowed != n {
		t.Errorf("%d of %d new addresses allowed, want all", allowed, n)
	}
	if got := after.Mallocs - before.Mallocs; got > 100 { // the test's own bookkeeping only
		t.Errorf("a million addresses cost %d allocations", got)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 1<<20 {
		t.Errorf("the heap grew by %d bytes over a million addresses", grew)
	}
	if ok, _ := l.Allow(hot, at(10*time.Millisecond), lim); ok {
		t.Error("the address over its limit was forgotten in the flood")
	}
	if ok, _ := l.Allow(hot, at(1100*time.Millisecond), lim); !ok {
		t.Error("the address over its limit was not allowed again after an interval")
	}
}

// TestConcurrent hammers a small table from several goroutines: under
// -race this checks the locking, and every address gets exactly its
// burst when all requests come at one instant and nothing is evicted.
func TestConcurrent(t *testing.T) {
	l := New(1024)
	lim := Limit{Interval: time.Hour, Burst: 5}
	var wg sync.WaitGroup
	counts := make([]int, 8)
	for g := range counts {
		wg.Go(func() {
			for i := range 100 * 40 {
				if ok, _ := l.Allow(addr(i%100), t0, lim); ok {
					counts[g]++
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, c := range counts {
		total += c
	}
	if total != 100*lim.Burst {
		t.Errorf("%d requests allowed over 100 addresses, want %d", total, 100*lim.Burst)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(0)
	lim := Limit{Interval: time.Millisecond, Burst: 1 << 20}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(addr(i&4095), now, lim)
			i++
		}
	})
}
