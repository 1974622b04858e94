package stats

import (
	"math"
	"math/bits"
	"time"
)

// Response times are counted twice per request, each an atomic increment in
// the recording goroutine's shard:
//
//   - in a fine log-linear histogram (16 buckets per power of two, so a
//     bucket is at most 1/16 of its values wide), from which the collector
//     estimates the percentiles of a recent window;
//   - in the coarse buckets of LatencyBuckets, per request kind, which
//     /metrics exposes as a Prometheus histogram. These counts are exact:
//     a request lands in the first bucket whose bound it does not exceed.

// subBits is log2 of the number of fine buckets per power of two.
const subBits = 4

// maxFine is the largest duration, in nanoseconds, the fine histogram
// resolves; longer requests are counted in its last bucket (about 68s).
const maxFine = 1<<36 - 1

// numFine is the number of fine buckets: fineIndex(maxFine) + 1.
const numFine = (36-subBits)<<subBits + 1<<subBits

// fineIndex is the fine bucket of a duration of v nanoseconds. Values below
// 2<<subBits get a bucket each; above, each power of two is cut into
// 1<<subBits buckets.
func fineIndex(v uint64) int {
	if v > maxFine {
		v = maxFine
	}
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits
	return shift<<subBits + int(v>>shift)
}

// fineBounds returns the values [lo, hi) of fine bucket i, in nanoseconds.
func fineBounds(i int) (lo, hi uint64) {
	if i < 2<<subBits {
		return uint64(i), uint64(i) + 1
	}
	shift := i>>subBits - 1
	m := uint64(i - shift<<subBits)
	return m << shift, (m + 1) << shift
}

// latencyBuckets are the upper bounds of the coarse buckets. Every bound
// is at least twice the previous one, so that no fine bucket spans more
// than two coarse ones (see coarseOfFine).
var latencyBuckets = [...]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
	250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// NumLatencyBuckets is the number of finite latency buckets.
const NumLatencyBuckets = len(latencyBuckets)

// LatencyBuckets returns the upper bounds of the response-time histogram
// that /metrics exposes ("le" of chihaya_request_duration_seconds),
// ascending; Histogram.Buckets follows the same order.
func LatencyBuckets() []time.Duration { return append([]time.Duration(nil), latencyBuckets[:]...) }

// coarseBound[i] is latencyBuckets[i] in nanoseconds, then a +Inf bound.
var coarseBound [NumLatencyBuckets + 1]uint64

// coarseOfFine[f] is the first coarse bucket whose bound is at least the
// lowest value of fine bucket f. A fine bucket is narrower than the gap
// between two coarse bounds, so a value of fine bucket f belongs to coarse
// bucket coarseOfFine[f] or to the next one.
var coarseOfFine [numFine]uint8

func init() {
	for i, b := range latencyBuckets {
		coarseBound[i] = uint64(b)
	}
	coarseBound[NumLatencyBuckets] = math.MaxUint64
	c := 0
	for f := range coarseOfFine {
		lo, _ := fineBounds(f)
		for coarseBound[c] < lo {
			c++
		}
		coarseOfFine[f] = uint8(c)
	}
}

// buckets returns the fine and the coarse bucket of a duration of v ns.
func buckets(v uint64) (fine, coarse int) {
	fine = fineIndex(v)
	coarse = int(coarseOfFine[fine])
	if v > coarseBound[coarse] {
		coarse++
	}
	return fine, coarse
}

// Percentiles are response-time percentiles, in milliseconds.
type Percentiles struct {
	P50, P90, P95, P99 float64
}

// percentiles estimates the percentiles of the samples counted in h (fine
// buckets). Within a bucket, samples are taken as evenly spread, so the
// error is below the bucket's width: 1/16 of the value. ok is false when h
// is empty.
func percentiles(h *[numFine]uint64) (p Percentiles, ok bool) {
	var total uint64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return p, false
	}
	qs := [...]struct {
		q   float64
		out *float64
	}{{0.50, &p.P50}, {0.90, &p.P90}, {0.95, &p.P95}, {0.99, &p.P99}}
	var seen uint64
	i := 0
	for q := range qs {
		// rank is the 1-based position of the sample sought.
		rank := uint64(math.Ceil(qs[q].q * float64(total)))
		rank = max(rank, 1)
		for seen+h[i] < rank {
			seen += h[i]
			i++
		}
		lo, hi := fineBounds(i)
		// The rank-th sample of the bucket, its samples spread evenly.
		ns := float64(lo) + (float64(rank-seen)-0.5)/float64(h[i])*float64(hi-lo)
		*qs[q].out = ns / 1e6
	}
	return p, true
}

// window is the recent response-time distribution: the fine histogram's
// counts over the last windowSlots slots of slotTicks collector ticks.
type window struct {
	last  [numFine]uint64 // cumulative counts at the previous fold
	slots [windowSlots][numFine]uint64
	cur   int // slot receiving the current deltas
	ticks int // folds into slots[cur] so far
	sum   [numFine]uint64
}

// The window: 6 slots of 10 one-second folds, so percentiles cover the last
// 50 to 60 seconds.
const (
	foldInterval = time.Second
	windowSlots  = 6
	slotTicks    = 10
)

// fold adds the counts since the previous fold (now holds the cumulative
// counts) to the current slot and returns the window's histogram.
func (w *window) fold(now *[numFine]uint64, tick bool) *[numFine]uint64 {
	for i, n := range now {
		w.slots[w.cur][i] += n - w.last[i]
	}
	w.last = *now
	if tick {
		w.ticks++
		if w.ticks == slotTicks {
			w.ticks = 0
			w.cur = (w.cur + 1) % windowSlots
			w.slots[w.cur] = [numFine]uint64{}
		}
	}
	w.sum = [numFine]uint64{}
	for s := range w.slots {
		for i, n := range w.slots[s] {
			w.sum[i] += n
		}
	}
	return &w.sum
}
