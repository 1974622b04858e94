package tracker_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	_ "github.com/chihaya/chihaya/backend/noop"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	_ "github.com/chihaya/chihaya/tracker/memory"
)

func newTracker(t *testing.T, cfg *config.Config) *tracker.Tracker {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	pool, err := tracker.Open("memory", tracker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	be, err := backend.Open("noop", nil)
	if err != nil {
		t.Fatal(err)
	}
	st := stats.New()
	tkr := tracker.New(cfg, pool, be, st)
	t.Cleanup(func() { tkr.Close(); st.Close() })
	return tkr
}

func announce(t *testing.T, tkr *tracker.Tracker, id byte, left uint64) *tracker.AnnounceResponse {
	t.Helper()
	a := &tracker.Announce{InfoHash: bittorrent.InfoHash{1}, PeerID: bittorrent.PeerID{id}, Addr: netip.AddrFrom4([4]byte{10, 0, 0, id}),
		Port: 6881, Left: left, NumWant: -1}
	var resp tracker.AnnounceResponse
	if err := tkr.Announce(context.Background(), a, &resp); err != nil {
		t.Fatal(err)
	}
	return &resp
}

// TestReloadKeepsSwarms checks that a reloaded configuration applies to
// the next announce and that the swarms stay as they were.
func TestReloadKeepsSwarms(t *testing.T) {
	tkr := newTracker(t, config.Default())
	announce(t, tkr, 1, 0)
	announce(t, tkr, 2, 0)
	if r := announce(t, tkr, 3, 5); r.Interval != 30*time.Minute || r.NumPeers() != 2 {
		t.Fatalf("before the reload: interval %v, %d peers", r.Interval, r.NumPeers())
	}
	next := config.Default()
	next.Announce.Duration, next.MinAnnounce.Duration, next.DefaultNumWant = 45*time.Minute, 20*time.Minute, 1
	running := tkr.Config()
	merged, _ := running.Reload(next)
	tkr.Reload(merged)
	if tkr.Config() != merged || running.Announce.Duration != 30*time.Minute {
		t.Fatal("Config does not return the reloaded configuration, or the old one changed")
	}
	r := announce(t, tkr, 3, 5)
	if r.Interval != 45*time.Minute || r.MinInterval != 20*time.Minute || r.NumPeers() != 1 || r.Complete != 2 || r.Incomplete != 1 {
		t.Errorf("after the reload: interval %v, min %v, %d peers, counts %+v", r.Interval, r.MinInterval, r.NumPeers(), r.Counts)
	}
}

// TestReloadWhileAnnouncing runs reloads against announces, for the race
// detector: the configuration is swapped whole, never changed in place.
func TestReloadWhileAnnouncing(t *testing.T) {
	tkr := newTracker(t, config.Default())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			next := *tkr.Config()
			next.Announce.Duration = time.Duration(30+i%2) * time.Minute
			tkr.Reload(&next)
		}
	})
	for i := range 200 {
		if r := announce(t, tkr, byte(i), 1); r.Interval != 30*time.Minute && r.Interval != 31*time.Minute {
			t.Fatalf("interval %v", r.Interval)
		}
	}
	wg.Wait()
}

// TestAnnounceJitter checks each answer's interval lies in
// [announce, announce+jitter), varies, and leaves min interval alone.
func TestAnnounceJitter(t *testing.T) {
	cfg := config.Default()
	cfg.Announce.Duration, cfg.AnnounceJitter.Duration = 30*time.Minute, 5*time.Minute
	tkr := newTracker(t, cfg)
	seen := map[time.Duration]bool{}
	var lo, hi time.Duration = time.Hour, 0
	for i := range 500 {
		r := announce(t, tkr, byte(i), 1)
		if r.Interval < 30*time.Minute || r.Interval >= 35*time.Minute || r.MinInterval != 15*time.Minute {
			t.Fatalf("interval %v, min interval %v", r.Interval, r.MinInterval)
		}
		seen[r.Interval/time.Second] = true
		lo, hi = min(lo, r.Interval), max(hi, r.Interval)
	}
	// 500 draws from 300 whole seconds: a uniform spread covers most of
	// them and both ends of the range.
	if len(seen) < 150 || lo > 31*time.Minute || hi < 34*time.Minute {
		t.Errorf("500 intervals: %d distinct seconds, from %v to %v", len(seen), lo, hi)
	}

	tkr.Reload(config.Default()) // jitter 0: every interval is announce exactly
	for i := range 50 {
		if r := announce(t, tkr, byte(i), 1); r.Interval != 30*time.Minute {
			t.Fatalf("without jitter: interval %v", r.Interval)
		}
	}
}
