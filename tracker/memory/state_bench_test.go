package memory

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chihaya/chihaya/tracker"
)

// The state file's figures, at PEERS peers (default 1M) in PEERS/10
// swarms, loaded as bench/workload loads them:
//
//	go test -run '^$' -bench 'State|DuringSave' -benchtime 3x ./tracker/memory

func benchPeers(b *testing.B) int {
	if n, err := strconv.Atoi(os.Getenv("PEERS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// savedStore is a loaded store with a state file, shared by the
// benchmarks of one run.
var savedStore struct {
	once  sync.Once
	s     *Store
	peers int
}

func benchStore(b *testing.B) *Store {
	savedStore.once.Do(func() {
		dir, err := os.MkdirTemp("", "chihaya-state-bench-")
		if err != nil {
			b.Fatal(err)
		}
		peers := benchPeers(b)
		s := New(Params{Shards: DefaultShards, StateFile: filepath.Join(dir, "state"), Lifetime: time.Hour})
		loadBench(b, s, peers, peers/10)
		savedStore.s, savedStore.peers = s, peers
	})
	return savedStore.s
}

// BenchmarkStateSave writes the state file: the time of a snapshot, and
// the file's bytes per peer.
func BenchmarkStateSave(b *testing.B) {
	s := benchStore(b)
	for b.Loop() {
		if err := s.Save(); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(s.p.StateFile)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/float64(savedStore.peers), "file-bytes/peer")
}

// BenchmarkStateLoad reads it back into a new store.
func BenchmarkStateLoad(b *testing.B) {
	s := benchStore(b)
	if err := s.Save(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r, err := Load(s.p, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if _, n := r.Len(); n != savedStore.peers {
			b.Fatalf("loaded %d peers, want %d", n, savedStore.peers)
		}
		r.Close()
	}
}

// BenchmarkAnnounceDuringSave announces from one goroutine while the
// state file is written over and over, and reports the announces' p99
// and slowest times during the writes, and p99 without them.
func BenchmarkAnnounceDuringSave(b *testing.B) {
	s := benchStore(b)
	torrents := savedStore.peers / 10
	measure := func(saving bool) (p99, worst time.Duration) {
		var stop atomic.Bool
		var lat []time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			var resp tracker.AnnounceResponse
			for i := 0; !stop.Load(); i++ {
				a := benchAnnounce(1+(i*7919)%savedStore.peers, torrents)
				resp.Reset()
				t := time.Now()
				s.Announce(context.Background(), &a, tracker.Update{Want: 50}, &resp)
				lat = append(lat, time.Since(t))
			}
		}()
		if saving {
			for range b.N {
				if err := s.Save(); err != nil {
					b.Error(err)
				}
			}
		} else {
			time.Sleep(time.Second)
		}
		stop.Store(true)
		<-done
		slices.Sort(lat)
		return lat[len(lat)*99/100], lat[len(lat)-1]
	}
	idle, _ := measure(false)
	b.ResetTimer()
	p99, worst := measure(true)
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs-saving")
	b.ReportMetric(float64(worst.Microseconds()), "max-µs-saving")
	b.ReportMetric(float64(idle.Microseconds()), "p99-µs-idle")
}
