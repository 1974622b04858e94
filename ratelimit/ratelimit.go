// Package ratelimit holds the per-address token buckets that cap how often
// one client may announce or scrape.
//
// Each bucket is kept as the generic cell rate algorithm's one number, the
// theoretical arrival time (TAT): the moment the bucket will be full again.
// A request is allowed if, after it, the bucket would hold no more than
// Burst requests' worth of debt. An address whose TAT has passed has a full
// bucket, exactly as an address never seen: the table may forget it, and
// does. So the table is a fixed array of small sets, allocated once, that
// holds only the addresses that made a request within the last
// Burst×Interval; a new address takes a forgotten (idle) entry of its set
// or, when every entry is busy, the one that would be idle soonest. Memory
// is therefore bounded whatever number of addresses appear, and an
// address that is over its limit (the latest TAT of its set) is the last
// to be dropped.
package ratelimit

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEntries is the table size New uses for a size of 0: enough for
// 65536 addresses active within one refill period (Burst×Interval), in
// about 1.1 MiB.
const DefaultEntries = 1 << 16

// ways is the number of entries in a set: an address can only live in
// its set, so a set is the unit of eviction.
const ways = 8

// Limit is a token bucket's shape: Burst requests at once, then one every
// Interval.
type Limit struct {
	Interval time.Duration
	Burst    int
}

// PerSecond is the Limit of rps requests per second with a burst of
// burst; the zero Limit, which allows everything, unless both are
// positive.
func PerSecond(rps float64, burst int) Limit {
	if rps <= 0 || burst <= 0 {
		return Limit{}
	}
	return Limit{Interval: time.Duration(float64(time.Second) / rps), Burst: burst}
}

// off reports whether lim allows everything.
func (lim Limit) off() bool { return lim.Interval <= 0 || lim.Burst <= 0 }

// entry is one address's bucket.
type entry struct {
	key uint64 // a keyed hash of the address: see Limiter.key
	tat int64  // when the bucket is full again, on the Limiter's clock; <= now: idle
}

type set struct {
	mu      sync.Mutex
	entries [ways]entry
}

// Limiter is a fixed-size table of token buckets, one per client address
// (per /64 network for IPv6, where one subscriber holds a whole /64). Its
// methods are safe for concurrent use.
type Limiter struct {
	seed maphash.Seed
	// epoch is the clock's zero, a day before New, so that a time a
	// caller took shortly before New is still positive: a TAT of 0 means
	// "never".
	epoch time.Time
	sets  []set
	mask  uint64
}

// New returns a limiter holding up to entries addresses at once (rounded
// up to a power of two of at least 8; DefaultEntries for 0).
func New(entries int) *Limiter {
	if entries <= 0 {
		entries = DefaultEntries
	}
	n := 1
	for n*ways < entries {
		n *= 2
	}
	return &Limiter{
		seed:  maphash.MakeSeed(),
		epoch: time.Now().Add(-24 * time.Hour),
		sets:  make([]set, n),
		mask:  uint64(n - 1),
	}
}

// Entries is the number of addresses the table holds at most.
func (l *Limiter) Entries() int { return len(l.sets) * ways }

// key is a hash of addr's bucket: the IPv4 address, or the IPv6 address's
// /64 network. IPv4-mapped IPv6 addresses are IPv4. The hash is keyed with
// a random seed, so nobody can choose addresses that collide; two
// addresses sharing a bucket by chance, 1 in 2^64 per pair, is harmless.
func (l *Limiter) key(addr netip.Addr) uint64 {
	var b [17]byte
	addr = addr.Unmap()
	if addr.Is4() {
		a := addr.As4()
		copy(b[:4], a[:])
		b[16] = 4
	} else {
		a := addr.As16()
		copy(b[:8], a[:8])
		b[16] = 6
	}
	return maphash.Bytes(l.seed, b[:])
}

// Allow takes one request from addr's bucket at now, under lim. If the
// bucket is empty it takes nothing and returns false and how long until
// it allows a request again. A Limit with a zero Interval or Burst
// allows everything.
func (l *Limiter) Allow(addr netip.Addr, now time.Time, lim Limit) (ok bool, retry time.Duration) {
	if lim.off() {
		return true, 0
	}
	k := l.key(addr)
	t := int64(now.Sub(l.epoch)) // monotonic: a clock step moves no bucket
	interval := int64(lim.Interval)
	window := interval * int64(lim.Burst)
	s := &l.sets[k&l.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.find(k)
	tat := max(e.tat, t)
	if next := tat + interval; next-t > window {
		return false, time.Duration(next - window - t)
	}
	e.key, e.tat = k, tat+interval
	return true, 0
}

// find returns k's entry in s, or the entry k is to take: the one that
// will be idle soonest, if not already. A taken entry's TAT is reset. The
// caller holds s.mu.
func (s *set) find(k uint64) *entry {
	victim := &s.entries[0]
	for i := range s.entries {
		e := &s.entries[i]
		if e.key == k {
			return e // idle or not: Allow starts from max(TAT, now)
		}
		if e.tat < victim.tat {
			victim = e
		}
	}
	victim.key, victim.tat = k, 0
	return victim
}

// Lazy is a Limiter of DefaultEntries made by the first request that
// finds a limit on: a frontend whose limit is off (the default), and may
// be turned on by a reload, holds no table until then. The zero Lazy is
// ready to use, and safe for concurrent use.
type Lazy struct{ p atomic.Pointer[Limiter] }

// Allow is Limiter.Allow on the table, made now if lim is the first limit
// that is on.
func (z *Lazy) Allow(addr netip.Addr, now time.Time, lim Limit) (ok bool, retry time.Duration) {
	if lim.off() {
		return true, 0
	}
	l := z.p.Load()
	if l == nil {
		z.p.CompareAndSwap(nil, New(0))
		l = z.p.Load()
	}
	return l.Allow(addr, now, lim)
}

// Entries is the table's size: 0 until a limit was on.
func (z *Lazy) Entries() int {
	if l := z.p.Load(); l != nil {
		return l.Entries()
	}
	return 0
}
