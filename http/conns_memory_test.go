//go:build !race

// The race detector's own bookkeeping moves the heap by more than the 10%
// checked here: `make test` runs this file in a pass without it.

package http

import (
	"runtime"
	"testing"
)

// TestSlowlorisMemoryReturns: after floods of 5,000 idle and slowloris
// connections (see TestSlowlorisHeld) the Go heap and stacks return to
// their starting level, flood after flood.
//
// A first flood leaves high-water marks behind, which later ones reuse:
// the Go runtime's record of every goroutine it has run (about half a
// KiB; never freed), net/http's map of open connections (maps do not
// shrink) and the poller's timers. That is checked to be all it leaves,
// at most 1 KiB a connection; the starting level of the next floods is
// the level after it.
func TestSlowlorisMemoryReturns(t *testing.T) {
	addr := serveForFlood(t)
	goroutines, start := runtime.NumGoroutine(), heapNow()
	flood(t, addr, floodSize, goroutines)
	first := heapNow()
	t.Logf("heap and stacks: %d KiB at the start, %d KiB after the first flood", start>>10, first>>10)
	if first > start+floodSize<<10 {
		t.Errorf("the first flood left %d KiB behind, more than its high-water marks (%d KiB at most)", (first-start)>>10, floodSize)
	}
	for round := 2; round <= 3; round++ {
		flood(t, addr, floodSize, goroutines)
		after := heapNow()
		t.Logf("heap and stacks: %d KiB after flood %d", after>>10, round)
		if after > first+first/10 {
			t.Errorf("flood %d left the heap and stacks at %d KiB, from %d KiB after the first: want within 10%%", round, after>>10, first>>10)
		}
	}
}
