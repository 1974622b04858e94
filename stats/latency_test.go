package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestFineBuckets(t *testing.T) {
	prevHi := uint64(0)
	for i := range numFine {
		lo, hi := fineBounds(i)
		if lo != prevHi {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if w := hi - lo; w > 1 && w*16 > lo {
			t.Fatalf("bucket %d [%d, %d) is wider than 1/16 of its values", i, lo, hi)
		}
		for _, v := range []uint64{lo, hi - 1, (lo + hi) / 2} {
			if got := fineIndex(v); got != i {
				t.Fatalf("fineIndex(%d) = %d, want %d", v, got, i)
			}
		}
		prevHi = hi
	}
	if prevHi != maxFine+1 {
		t.Fatalf("last bucket ends at %d, want %d", prevHi, uint64(maxFine+1))
	}
	if got := fineIndex(math.MaxUint64); got != numFine-1 {
		t.Fatalf("fineIndex(MaxUint64) = %d, want the last bucket %d", got, numFine-1)
	}
}

// TestCoarseBuckets checks that the fine-to-coarse shortcut puts every value
// where a plain search of the bounds does, at and around every bound.
func TestCoarseBuckets(t *testing.T) {
	want := func(v uint64) int {
		for i, b := range latencyBuckets {
			if v <= uint64(b) {
				return i
			}
		}
		return NumLatencyBuckets
	}
	values := []uint64{0, 1, 15, 16, 31, 32, maxFine, maxFine + 1, math.MaxUint64}
	for _, b := range latencyBuckets {
		values = append(values, uint64(b)-1, uint64(b), uint64(b)+1)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		values = append(values, uint64(math.Exp(r.Float64()*math.Log(1e11))))
	}
	for _, v := range values {
		if _, got := buckets(v); got != want(v) {
			t.Fatalf("coarse bucket of %dns = %d, want %d", v, got, want(v))
		}
	}
}

func TestPercentilesAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		gen  func() time.Duration
	}{
		{"Constant", func() time.Duration { return 137 * time.Microsecond }},
		{"Uniform10usTo1ms", func() time.Duration {
			return 10*time.Microsecond + time.Duration(r.Int64N(int64(990*time.Microsecond)))
		}},
		{"LogNormal", func() time.Duration { return time.Duration(math.Exp(r.NormFloat64()*1.2 + math.Log(80e3))) }},
		{"Exponential", func() time.Duration { return time.Duration(r.ExpFloat64() * 250e3) }},
		{"BimodalWithTail", func() time.Duration {
			switch x := r.Float64(); {
			case x < 0.7:
				return 40*time.Microsecond + time.Duration(r.Int64N(20e3))
			case x < 0.97:
				return 2*time.Millisecond + time.Duration(r.Int64N(1e6))
			default:
				return 300*time.Millisecond + time.Duration(r.Int64N(200e6))
			}
		}},
		{"Tiny", func() time.Duration { return time.Duration(r.Int64N(40)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h [numFine]uint64
			samples := make([]float64, 20000)
			for i := range samples {
				d := tc.gen()
				samples[i] = float64(d)
				h[fineIndex(uint64(d))]++
			}
			slices.Sort(samples)
			p, ok := percentiles(&h)
			if !ok {
				t.Fatal("no percentiles from a full histogram")
			}
			for _, c := range []struct {
				q   float64
				got float64
			}{{0.50, p.P50}, {0.90, p.P90}, {0.95, p.P95}, {0.99, p.P99}} {
				exact := samples[int(math.Ceil(c.q*float64(len(samples))))-1] / 1e6
				// The estimate lies in the exact value's bucket: within 1/16,
				// or within 1ns for the buckets one nanosecond wide.
				if tol := max(exact/16, 1e-6); math.Abs(c.got-exact) > tol {
					t.Errorf("P%v = %.6fms, exact %.6fms (tolerance %.6fms)", c.q*100, c.got, exact, tol)
				}
			}
		})
	}
}

func TestPercentilesEmpty(t *testing.T) {
	var h [numFine]uint64
	if _, ok := percentiles(&h); ok {
		t.Fatal("percentiles of an empty histogram: ok")
	}
}

// TestWindow checks that samples leave the window after windowSlots slots
// and that the window holds only what came since.
func TestWindow(t *testing.T) {
	var w window
	var cum [numFine]uint64
	fast, slow := fineIndex(uint64(100*time.Microsecond)), fineIndex(uint64(50*time.Millisecond))
	cum[slow] = 1000 // old, slow requests
	h := w.fold(&cum, true)
	if h[slow] != 1000 {
		t.Fatalf("window holds %d slow requests, want 1000", h[slow])
	}
	for tick := 2; tick <= windowSlots*slotTicks; tick++ {
		cum[fast] += 10
		h = w.fold(&cum, true)
		p, _ := percentiles(h)
		if tick < (windowSlots-1)*slotTicks+1 && h[slow] != 1000 {
			t.Fatalf("tick %d: the slow requests left the window early", tick)
		}
		if tick == windowSlots*slotTicks {
			if h[slow] != 0 {
				t.Fatalf("tick %d: the slow requests are still in the window", tick)
			}
			if p.P99 > 0.11 {
				t.Fatalf("tick %d: P99 %.3fms still shows the old requests", tick, p.P99)
			}
		}
	}
	// A fold without tick (Flush) adds without rotating.
	cum[fast] += 5
	before := h[fast]
	if h = w.fold(&cum, false); h[fast] != before+5 {
		t.Fatalf("flush fold: %d fast requests, want %d", h[fast], before+5)
	}
}
