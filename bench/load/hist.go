package main

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets a histogram's precision: each power of two is split into
// 1<<subBits buckets, so a quantile is off by at most 1/32 (3%).
const subBits = 5

// hist counts durations (in nanoseconds) in log-linear buckets: constant
// memory and constant time per value, however long the run.
type hist [(65 - subBits) << subBits]uint64

func bucket(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - subBits
	return e<<subBits | int(v>>(e-1))&(1<<subBits-1)
}

// lowest returns the smallest value that falls in bucket b.
func lowest(b int) uint64 {
	e, m := b>>subBits, uint64(b&(1<<subBits-1))
	if e == 0 {
		return m
	}
	return (1<<subBits + m) << (e - 1)
}

func (h *hist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h[bucket(uint64(d))]++
}

func (h *hist) merge(o *hist) {
	for b, n := range o {
		h[b] += n
	}
}

// quantile returns the upper bound of the bucket holding the q-th value
// (0 < q <= 1), 0 for an empty histogram.
func (h *hist) quantile(q float64) time.Duration {
	var total uint64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for b, n := range h {
		seen += n
		if seen >= rank {
			return upper(b)
		}
	}
	return upper(len(h) - 1)
}

// upper returns the largest duration that falls in bucket b.
func upper(b int) time.Duration {
	if b+1 >= len(hist{}) {
		return math.MaxInt64
	}
	return time.Duration(min(lowest(b+1)-1, math.MaxInt64))
}
