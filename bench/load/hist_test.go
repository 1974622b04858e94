package main

import (
	"math"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	for b := 0; b < len(hist{})-1; b++ {
		lo, next := lowest(b), lowest(b+1)
		if next <= lo {
			t.Fatalf("bucket %d starts at %d, bucket %d at %d", b, lo, b+1, next)
		}
		if got := bucket(lo); got != b {
			t.Fatalf("bucket(%d) = %d, want %d", lo, got, b)
		}
		if got := bucket(next - 1); got != b {
			t.Fatalf("bucket(%d) = %d, want %d", next-1, got, b)
		}
	}
	if got, want := bucket(math.MaxUint64), len(hist{})-1; got != want {
		t.Errorf("bucket(MaxUint64) = %d, want the last, %d", got, want)
	}
	var h hist
	h.add(math.MaxInt64)
	if got := h.quantile(0.5); got != math.MaxInt64 {
		t.Errorf("quantile of the largest duration = %v", got)
	}
}

func TestQuantile(t *testing.T) {
	var h hist
	if got := h.quantile(0.5); got != 0 {
		t.Errorf("empty quantile = %v, want 0", got)
	}
	for us := 1; us <= 100000; us++ {
		h.add(time.Duration(us) * time.Microsecond)
	}
	var o hist
	o.add(time.Hour)
	h.merge(&o)
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 50 * time.Millisecond},
		{0.9, 90 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{0.999, 99900 * time.Microsecond},
		{1, time.Hour},
	} {
		got := h.quantile(tc.q)
		if got < tc.want || got > tc.want+tc.want/32 {
			t.Errorf("quantile(%v) = %v, want %v to 1/32 above", tc.q, got, tc.want)
		}
	}
}
