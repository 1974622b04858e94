package tracker_test

import (
	"context"
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
		calls := 0
		done := make(chan struct{})
		go func() { tracker.Every(ctx, time.Minute, func() { calls++ }); close(done) }()
		for _, want := range []int{0, 1, 3} {
			switch want {
			case 1:
				time.Sleep(time.Minute)
			case 3:
				time.Sleep(2 * time.Minute)
			}
			synctest.Wait()
			if calls != want {
				t.Fatalf("after %d calls expected, %d", want, calls)
			}
		}
		cancel()
		<-done
		time.Sleep(time.Hour)
		if calls != 3 {
			t.Errorf("f ran %d times, 3 before ctx ended", calls)
		}
	})
}
