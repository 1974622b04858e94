package tracker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chihaya/chihaya/tracker"
)

// TestEvery: f runs once per interval, never before the first has passed,
// and not after ctx ends.
func TestEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int32 // the race detector does not see synctest.Wait as a synchronisation
		done := make(chan struct{})
		go func() { tracker.Every(ctx, time.Minute, func() { calls.Add(1) }); close(done) }()
		for _, want := range []int{0, 1, 3} {
			switch want {
			case 1:
				time.Sleep(time.Minute)
			case 3:
				time.Sleep(2 * time.Minute)
			}
			synctest.Wait()
			if n := calls.Load(); n != int32(want) {
				t.Fatalf("after %d calls expected, %d", want, n)
			}
		}
		cancel()
		<-done
		time.Sleep(time.Hour)
		if n := calls.Load(); n != 3 {
			t.Errorf("f ran %d times, 3 before ctx ended", n)
		}
	})
}
