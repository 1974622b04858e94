package trackertest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
)

// Site is a site backend kept in memory, for the tests of the tracker and
// its frontends in private mode: users by passkey, torrents by info_hash,
// a client whitelist and the site's own interval, jitter and snatch
// counts, recording every announce and swarm count it is given. It has
// every optional interface the tracker looks for.
//
// Set the fields before the tracker uses the site; the maps may be changed
// between requests of one goroutine. The recorded announces and swarms are
// safe to read while requests run.
type Site struct {
	Users     map[string]backend.User
	Torrents  map[bittorrent.InfoHash]backend.Torrent
	Reasons   map[bittorrent.InfoHash]string // why an unregistered torrent went
	Whitelist []string                       // peer_id prefixes; empty allows every client
	Interval  time.Duration                  // the site's announce interval; 0: not set
	Jitter    time.Duration                  // the site's jitter; 0: not set, unless JitterSet
	JitterSet bool                           // the site sets Jitter, even 0
	Counts    map[uint32]int64               // snatches by torrent ID; absent: no count

	mu        sync.Mutex
	announces []backend.Announce
	swarms    []string // RecordSwarm calls, "id:seeders/leechers"
}

// The tracker finds these by type assertion: a method that drifts from its
// interface must not compile.
var (
	_ backend.Site          = (*Site)(nil)
	_ backend.Intervals     = (*Site)(nil)
	_ backend.SnatchCounter = (*Site)(nil)
	_ backend.SwarmRecorder = (*Site)(nil)
)

// User returns the user of passkey.
func (s *Site) User(passkey string) (backend.User, bool) {
	u, ok := s.Users[passkey]
	return u, ok
}

// Torrent returns the torrent of h and, for one not registered, the reason.
func (s *Site) Torrent(h bittorrent.InfoHash) (backend.Torrent, bool, string) {
	t, ok := s.Torrents[h]
	return t, ok, s.Reasons[h]
}

// ClientAllowed reports whether id starts with a prefix of the whitelist,
// or the whitelist is empty.
func (s *Site) ClientAllowed(id bittorrent.PeerID) bool {
	for _, prefix := range s.Whitelist {
		if strings.HasPrefix(string(id[:]), prefix) {
			return true
		}
	}
	return len(s.Whitelist) == 0
}

// AnnounceInterval returns Interval, if set.
func (s *Site) AnnounceInterval() (time.Duration, bool) { return s.Interval, s.Interval != 0 }

// AnnounceJitter returns Jitter, if set.
func (s *Site) AnnounceJitter() (time.Duration, bool) {
	return s.Jitter, s.Jitter != 0 || s.JitterSet
}

// Snatches returns the torrent's count in Counts.
func (s *Site) Snatches(id uint32) (int64, bool) {
	n, ok := s.Counts[id]
	return n, ok
}

// RecordAnnounce records a.
func (s *Site) RecordAnnounce(a backend.Announce) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.announces = append(s.announces, a)
	return nil
}

// RecordSwarm records the counts as "id:seeders/leechers".
func (s *Site) RecordSwarm(id uint32, seeders, leechers int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.swarms = append(s.swarms, fmt.Sprintf("%d:%d/%d", id, seeders, leechers))
	return nil
}

// Close does nothing.
func (s *Site) Close() error { return nil }

// Announces returns the announces recorded so far.
func (s *Site) Announces() []backend.Announce {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]backend.Announce(nil), s.announces...)
}

// ForgetAnnounces drops the announces recorded so far.
func (s *Site) ForgetAnnounces() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.announces = nil
}

// Swarms returns the swarm counts recorded so far, "id:seeders/leechers".
func (s *Site) Swarms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.swarms...)
}

// NewTracker returns a tracker over a fresh "memory" store and be (the
// "noop" backend when be is nil), with the stats it feeds; both are closed
// when the test ends. The caller links the drivers in: tracker/memory and,
// without be, backend/noop.
func NewTracker(tb testing.TB, cfg *config.Config, be backend.Conn) (*tracker.Tracker, *stats.Stats) {
	tb.Helper()
	pool, err := tracker.Open("memory", tracker.Options{Private: cfg.Private})
	if err != nil {
		tb.Fatal(err)
	}
	if be == nil {
		if be, err = backend.Open("noop", nil); err != nil {
			tb.Fatal(err)
		}
	}
	st := stats.New()
	tkr := tracker.New(cfg, pool, be, st)
	tb.Cleanup(func() { tkr.Close(); st.Close() })
	return tkr, st
}
