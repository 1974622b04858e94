package memory

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// dump describes every swarm and peer of s, but for the peers' times:
// counts, and each record's peer_id, address, port, role, flags and user.
func dump(s *Store) []string {
	var out []string
	for k := range s.shards {
		sh := &s.shards[k]
		sh.mu.Lock()
		for slot := range sh.swarms {
			w := &sh.swarms[slot]
			if !w.used {
				continue
			}
			out = append(out, fmt.Sprintf("%x %+v", w.hash, sh.counts(w)))
			lists := []list{sh.view(&w.v4, false)}
			if v := sh.v6(w); v != nil {
				lists = append(lists, sh.view(&v.peerList, true))
			}
			for _, l := range lists {
				for i := range l.len() {
					out = append(out, fmt.Sprintf("%x %x %x seeder=%v snatched=%v twin=%v uid=%d", w.hash, l.id(i), l.packed(i),
						i < int(l.seeders), l.flag(i, flagSnatched), l.flag(i, flagTwin), l.uid(i)))
				}
			}
		}
		sh.mu.Unlock()
	}
	slices.Sort(out)
	return out
}

func statePath(t *testing.T) string { return filepath.Join(t.TempDir(), "state") }

// TestStateRoundTrip: what Save writes, Load brings back as it was, in a
// store of another shard count too; the loaded store goes on serving.
func TestStateRoundTrip(t *testing.T) {
	for _, p := range []Params{
		{Shards: 16, Peering: tracker.Peering{DualStacked: true}},
		{Shards: 4, Private: true},
		{Shards: 1},
	} {
		t.Run(fmt.Sprintf("shards=%d,private=%v,dual=%v", p.Shards, p.Private, p.DualStacked), func(t *testing.T) {
			p.StateFile, p.Lifetime = statePath(t), time.Hour
			s := New(p)
			loadMixed(t, s, 3000, 40) // swarms of 75: indexed lists
			loadMixed(t, s, 200, 300) // and small ones
			want := dump(s)
			if err := s.Save(); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(p.StateFile)
			if err != nil || int(fi.Size()) != s.stateSize() || fi.Mode().Perm() != 0o600 {
				t.Fatalf("state file: %v, %v; want %d bytes, mode 0600", fi, err, s.stateSize())
			}
			s.Close()

			q := p
			q.Shards *= 2
			r, err := Load(q, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			swarms, peers := r.Len()
			if got := r.Restored(); got.Swarms != swarms || got.Peers[0]+got.Peers[1] < peers || got.Seeders[0] == 0 || got.Peers[1] == 0 {
				t.Errorf("Restored %+v; the store has %d swarms, %d peers", got, swarms, peers)
			}
			if got := dump(r); !slices.Equal(got, want) {
				t.Errorf("loaded %d lines, saved %d; first difference at %d", len(got), len(want), firstDiff(got, want))
			}
			// A loaded peer re-announces as a peer the store knows.
			var resp tracker.AnnounceResponse
			a := tracker.Announce{InfoHash: trackertest.Hash(1), PeerID: trackertest.ID(1), Addr: netip.AddrFrom4([4]byte{10, 0, 0, 1}), Port: 1001, Left: 1}
			if err := r.Announce(context.Background(), &a, tracker.Update{Want: 50, UserID: 2}, &resp); err != nil || resp.Change.Has(bittorrent.PeerAdded) || resp.NumPeers() == 0 {
				t.Errorf("re-announce of a loaded peer: %v, change %v, %d peers", err, resp.Change, resp.NumPeers())
			}
		})
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestStateExpiry: peers silent for longer than the lifetime by load time
// stay out; the others keep how long ago they announced, so that the
// reaper expires them when it would have.
func TestStateExpiry(t *testing.T) {
	p := Params{Shards: 8, StateFile: statePath(t), Lifetime: time.Hour}
	now := time.Now()
	s := New(p)
	s.epoch = now.Add(-2 * time.Hour) // as if it had run for that long
	loadMixedAt(t, s, 600, 10, now.Add(-50*time.Minute))
	loadMixedAt(t, s, 300, 10, now.Add(-10*time.Minute)) // half of them again, later
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	r, err := Load(p, now.Add(20*time.Minute)) // the first half is 70 minutes old by then
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, peers := r.Len()
	want := New(Params{Shards: 8})
	defer want.Close()
	loadMixed(t, want, 300, 10)
	if _, n := want.Len(); peers != n {
		t.Errorf("%d peers loaded, want the %d announced 30 minutes before", peers, n)
	}
	// 40 minutes more and they expire too.
	purged, _ := r.Purge(context.Background(), now.Add(time.Hour), true)
	if _, n := r.Len(); n != 0 || purged.Swarms != 10 {
		t.Errorf("after the rest's lifetime: %d peers left, %d swarms purged", n, purged.Swarms)
	}
}

// rewrite changes a saved file with f and puts a valid checksum back.
func rewrite(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = f(b)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	os.WriteFile(path, b, 0o600)
}

// TestStateRefused: every file that cannot be used is refused whole, with
// its reason, and the store starts empty.
func TestStateRefused(t *testing.T) {
	p := Params{Shards: 4, Lifetime: time.Hour, Peering: tracker.Peering{DualStacked: true}}
	good := func(t *testing.T) string {
		q := p
		q.StateFile = statePath(t)
		s := New(q)
		loadMixed(t, s, 500, 20)
		if err := s.Save(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		return q.StateFile
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string)
		p      func(p Params) Params
		now    time.Duration // after the save
		want   string
	}{
		{name: "truncated", change: func(t *testing.T, path string) { os.Truncate(path, 5000) }, want: "truncated: no trailer"},
		{name: "truncated header", change: func(t *testing.T, path string) { os.Truncate(path, 20) }, want: "truncated: 20 bytes"},
		{name: "empty", change: func(t *testing.T, path string) { os.Truncate(path, 0) }, want: "not a chihaya state file"},
		{name: "corrupt", change: func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			b[len(b)/2] ^= 1
			os.WriteFile(path, b, 0o600)
		}, want: "corrupt: checksum"},
		{name: "foreign", change: func(t *testing.T, path string) {
			os.WriteFile(path, []byte(strings.Repeat("{\"peers\": []}\n", 100)), 0o600)
		}, want: "not a chihaya state file"},
		{name: "other version", change: func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte { b[8] = 0; return b })
		}, want: "format version 0; this tracker reads version 1"},
		{name: "other layout", change: func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte { b[13] = 6; return b })
		}, want: "another record layout"},
		{name: "private file", p: func(p Params) Params { p.Private = true; return p }, want: "written by a tracker with private_tracker false, this one has true"},
		{name: "too old", now: 2 * time.Hour, want: "too old: written 2h0m0s ago, longer than the peer lifetime (1h0m0s)"},
		{name: "bad counts", change: func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte { b[len(b)-12]++; return b })
		}, want: "the trailer says"},
		{name: "bad swarm", change: func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte { binary.LittleEndian.PutUint32(b[stateHeaderLen+idLen+8:], 1<<20); return b })
		}, want: "corrupt: swarm"},
		{name: "cut swarm", change: func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte {
				return append(b[:stateHeaderLen+swarmHeaderLen+40], b[len(b)-stateTrailerLen:]...)
			})
		}, want: "corrupt: swarm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := good(t)
			if tc.change != nil {
				tc.change(t, path)
			}
			q := p
			q.StateFile = path
			if tc.p != nil {
				q = tc.p(q)
			}
			before, _ := os.ReadFile(path)
			s, err := Load(q, time.Now().Add(tc.now))
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Error("a refused file was changed")
			}
			if err == nil || !errors.Is(err, errStateRefused) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Load: %v, want a refusal naming the file and saying %q", err, tc.want)
			}
			if swarms, peers := s.Len(); swarms != 0 || peers != 0 {
				t.Errorf("a refused file left %d swarms, %d peers", swarms, peers)
			}
			s.Close()
		})
	}
	// No file yet: an empty store, and nothing to say.
	s, err := Load(Params{Shards: 1, StateFile: statePath(t)}, time.Now())
	if err != nil {
		t.Errorf("Load of a missing file: %v", err)
	}
	s.Close()
}

// TestOpenStateFile: the driver loads the file in Open, writes it on
// Close and every state_interval, and refuses a bad interval.
func TestOpenStateFile(t *testing.T) {
	path := statePath(t)
	params, _ := json.Marshal(map[string]string{"state_file": path, "state_interval": "50ms"})
	open := func() *Store {
		t.Helper()
		pool, err := tracker.Open("memory", tracker.Options{Params: params, Lifetime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return pool.(*Store)
	}
	s := open()
	loadMixed(t, s, 100, 5)
	want := dump(s)
	// A periodic save, without Close: as if the process were killed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r, err := Load(Params{Shards: DefaultShards, StateFile: path, Lifetime: time.Hour}, time.Now()); err == nil && slices.Equal(dump(r), want) {
			r.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no periodic snapshot of the store after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	loadMixed(t, s, 200, 5)
	want = dump(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	if got := dump(s); !slices.Equal(got, want) {
		t.Errorf("reopened: %d lines, want %d", len(got), len(want))
	}
	s.Close()
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("%d files beside the state file, want none", len(entries)-1)
	}

	_, err := tracker.Open("memory", tracker.Options{Params: json.RawMessage(`{"state_file": "x", "state_interval": "0s"}`)})
	if err == nil || !strings.Contains(err.Error(), "state_interval: must be positive") {
		t.Errorf("state_interval 0s: %v", err)
	}
}

// TestSaveWhileAnnouncing: snapshots run beside announces (run it with
// -race); the last one, taken when they stop, loads as the store is.
func TestSaveWhileAnnouncing(t *testing.T) {
	p := Params{Shards: 8, StateFile: statePath(t), Lifetime: time.Hour, Peering: tracker.Peering{DualStacked: true}}
	s := New(p)
	defer s.Close()
	done := make(chan struct{}, 3)
	for g := range 3 {
		go func() {
			defer func() { done <- struct{}{} }()
			for round := range 5 {
				loadMixed(t, s, 200*(g+1)+round, 10+g)
			}
		}()
	}
	for saves := 0; saves < 3 || len(done) < 3; saves++ {
		if err := s.Save(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	r, err := Load(p, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, want := dump(r), dump(s); !slices.Equal(got, want) {
		t.Errorf("loaded %d lines, the store has %d", len(got), len(want))
	}
}
