// Package trackertest is the conformance suite for tracker.Driver
// implementations: every driver's tests call Run with a fresh store, so all
// drivers keep the same promises.
package trackertest

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
)

// Run checks a driver's Conn against the contract documented on
// tracker.Conn. open must return a new, empty store on every call, opened
// with opts.
func Run(t *testing.T, open func(t *testing.T, opts tracker.Options) tracker.Pool) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, c tracker.Conn)
		opts tracker.Options
	}{
		{"CountsSeedersAndLeechers", testCounts, tracker.Options{}},
		{"StoppedRemovesPeer", testStopped, tracker.Options{}},
		{"StoppedFromUnknownPeerChangesNothing", testStoppedUnknown, tracker.Options{}},
		{"StoppedLastPeerRemovesSwarm", testStoppedLast, tracker.Options{}},
		{"UpdateEventIsApplied", testUpdateEvent, tracker.Options{}},
		{"CompletedCountsOnce", testCompletedOnce, tracker.Options{}},
		{"SeederGetsOnlyLeechers", testSeederGetsLeechers, tracker.Options{}},
		{"NeverReturnsTheAnnouncer", testNoSelf, tracker.Options{}},
		{"NumWantLimitsPeers", testNumWant, tracker.Options{}},
		{"FamiliesKeepTheirAddresses", testFamilies, tracker.Options{}},
		{"ReannounceUpdatesAddressAndRole", testReannounce, tracker.Options{}},
		{"ScrapeUnknownIsZero", testScrapeUnknown, tracker.Options{}},
		{"PurgeExpiresSilentPeers", testPurge, tracker.Options{}},
		{"PurgeKeepsEmptySwarmsWhenAsked", testPurgeKeep, tracker.Options{}},
		{"LargeSwarmStaysConsistent", testLargeSwarm, tracker.Options{}},
		{"PrivateNeverGivesAUserItsOwnPeers", testOwnUser, tracker.Options{Private: true}},
		{"PrivateLargeSwarm", testLargeSwarm, tracker.Options{Private: true}},
		{"DualStackedPeerIsOnePeer", testDualStacked, dualStacked},
		{"DualStackedLargeSwarm", testLargeSwarm, dualStacked},
		{"DualStackedExpiry", testDualStackedExpiry, dualStacked},
		{"DualStackedStoppedLastPeer", testDualStackedStoppedLast, dualStacked},
		{"RespectAF", testRespectAF, tracker.Options{Peering: tracker.Peering{RespectAF: true}}},
		{"PreferredSubnetFirst", testPreferredSubnet, tracker.Options{Peering: tracker.Peering{PreferIPv4Bits: 24, PreferIPv6Bits: 64}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := open(t, tc.opts)
			defer pool.Close()
			c, err := pool.Get()
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			defer c.Close()
			tc.fn(t, c)
		})
	}
}

var ctx = context.Background()

// Hash returns a distinct info_hash for n.
func Hash(n int) bittorrent.InfoHash {
	var h bittorrent.InfoHash
	copy(h[:], fmt.Sprintf("hash-%015d", n))
	return h
}

// ID returns a distinct peer_id for n.
func ID(n int) bittorrent.PeerID {
	var id bittorrent.PeerID
	copy(id[:], fmt.Sprintf("-TT0001-%012d", n))
	return id
}

// Leecher returns a started announce of peer n at addr, with 1000 bytes left.
func Leecher(h bittorrent.InfoHash, n int, addr string) *tracker.Announce {
	return &tracker.Announce{
		InfoHash: h, PeerID: ID(n), Addr: netip.MustParseAddr(addr),
		Port: uint16(1000 + n), Left: 1000, Event: bittorrent.Started, NumWant: -1,
	}
}

// Seeder is Leecher with nothing left.
func Seeder(h bittorrent.InfoHash, n int, addr string) *tracker.Announce {
	a := Leecher(h, n, addr)
	a.Left = 0
	return a
}

// result is an announce's response with its peers unpacked.
type result struct {
	*tracker.AnnounceResponse
	Peers []tracker.Peer
}

// announce applies a as the tracker does for a public announce: its own
// event, up to want peers.
func announce(t *testing.T, c tracker.Conn, a *tracker.Announce, want int) result {
	t.Helper()
	return update(t, c, a, tracker.Update{Event: a.Event, Want: want})
}

// update applies a as u says. It asks for peer ids too, and checks they
// match the packed peers and that the store left a as it was.
func update(t *testing.T, c tracker.Conn, a *tracker.Announce, u tracker.Update) result {
	t.Helper()
	var r tracker.AnnounceResponse
	a.PeerIDs = true
	before := *a
	if err := c.Announce(ctx, a, u, &r); err != nil {
		t.Fatalf("Announce: %v", err)
	}
	if *a != before {
		t.Fatalf("Announce changed its announce from %+v to %+v", before, *a)
	}
	if len(r.Peers4)%bittorrent.PackedIPv4 != 0 || len(r.Peers6)%bittorrent.PackedIPv6 != 0 ||
		len(r.IDs4) != len(r.Peers4)/bittorrent.PackedIPv4*bittorrent.PeerIDSize ||
		len(r.IDs6) != len(r.Peers6)/bittorrent.PackedIPv6*bittorrent.PeerIDSize {
		t.Fatalf("packed peers of %d and %d bytes with ids of %d and %d bytes", len(r.Peers4), len(r.Peers6), len(r.IDs4), len(r.IDs6))
	}
	return result{&r, r.PeerList()}
}

func scrape(t *testing.T, c tracker.Conn, h bittorrent.InfoHash) tracker.Counts {
	t.Helper()
	out, err := c.Scrape(ctx, []bittorrent.InfoHash{h}, nil)
	if err != nil || len(out) != 1 || out[0].InfoHash != h {
		t.Fatalf("Scrape = %v, %v", out, err)
	}
	return out[0].Counts
}

func wantCounts(t *testing.T, what string, got, want tracker.Counts) {
	t.Helper()
	if got != want {
		t.Errorf("%s: counts %+v, want %+v", what, got, want)
	}
}

func testCounts(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	r := announce(t, c, Leecher(h, 1, "10.0.0.1"), 50)
	wantCounts(t, "first leecher", r.Counts, tracker.Counts{Incomplete: 1})
	if !r.Change.Has(bittorrent.PeerAdded|bittorrent.SwarmAdded) || r.Change.Has(bittorrent.SeederAfter) {
		t.Errorf("first leecher: change %b", r.Change)
	}
	r = announce(t, c, Seeder(h, 2, "10.0.0.2"), 50)
	wantCounts(t, "then a seeder", r.Counts, tracker.Counts{Complete: 1, Incomplete: 1})
	if !r.Change.Has(bittorrent.PeerAdded|bittorrent.SeederAfter) || r.Change.Has(bittorrent.SwarmAdded) {
		t.Errorf("seeder: change %b", r.Change)
	}
	announce(t, c, Seeder(h, 3, "2001:db8::3"), 50)
	wantCounts(t, "scrape", scrape(t, c, h), tracker.Counts{Complete: 2, Incomplete: 1})
}

func testStopped(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	announce(t, c, Leecher(h, 1, "10.0.0.1"), 50)
	announce(t, c, Seeder(h, 2, "10.0.0.2"), 50)
	stop := Seeder(h, 2, "10.0.0.2")
	stop.Event = bittorrent.Stopped
	r := announce(t, c, stop, 0)
	if len(r.Peers) != 0 {
		t.Errorf("stopped got %d peers", len(r.Peers))
	}
	if !r.Change.Has(bittorrent.PeerRemoved | bittorrent.SeederBefore) {
		t.Errorf("stopped: change %b", r.Change)
	}
	wantCounts(t, "after stop", r.Counts, tracker.Counts{Incomplete: 1})
	wantCounts(t, "scrape", scrape(t, c, h), tracker.Counts{Incomplete: 1})
}

func testStoppedUnknown(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	stop := Leecher(h, 1, "10.0.0.1")
	stop.Event = bittorrent.Stopped
	r := announce(t, c, stop, 0)
	if r.Change != 0 || r.Counts != (tracker.Counts{}) {
		t.Errorf("stopped for an unknown swarm: %+v", r)
	}
	announce(t, c, Leecher(h, 2, "10.0.0.2"), 50)
	r = announce(t, c, stop, 0)
	if r.Change != 0 {
		t.Errorf("stopped for an unknown peer: change %b", r.Change)
	}
	wantCounts(t, "scrape", scrape(t, c, h), tracker.Counts{Incomplete: 1})
}

// stopped returns the stopped announce of peer n at addr.
func stopped(h bittorrent.InfoHash, n int, addr string) *tracker.Announce {
	a := Leecher(h, n, addr)
	a.Event = bittorrent.Stopped
	return a
}

// completed is the announce of peer n of h at addr that finishes its
// download: a seeder's, with event completed.
func completed(h bittorrent.InfoHash, n int, addr string) *tracker.Announce {
	a := Seeder(h, n, addr)
	a.Event = bittorrent.Completed
	return a
}

// purgeEmpty is the Update of a stopped announce on a tracker that drops
// empty swarms.
var purgeEmpty = tracker.Update{Event: bittorrent.Stopped, PurgeEmpty: true}

func testStoppedLast(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	// Without PurgeEmpty the last peer's stop leaves the swarm, and its
	// download count, in place.
	announce(t, c, Leecher(h, 1, "10.0.0.1"), 50)
	done := completed(h, 1, "10.0.0.1")
	announce(t, c, done, 50)
	r := announce(t, c, stopped(h, 1, "10.0.0.1"), 0)
	if r.Change.Has(bittorrent.SwarmRemoved) {
		t.Errorf("stop of the last peer without PurgeEmpty: change %b", r.Change)
	}
	wantCounts(t, "kept swarm", scrape(t, c, h), tracker.Counts{Downloaded: 1})

	// With it, a stop that leaves a peer keeps the swarm...
	announce(t, c, Leecher(h, 2, "10.0.0.2"), 50)
	announce(t, c, Leecher(h, 3, "2001:db8::3"), 50)
	r = update(t, c, stopped(h, 2, "10.0.0.2"), purgeEmpty)
	if r.Change.Has(bittorrent.SwarmRemoved) {
		t.Errorf("stop of one of two peers: change %b", r.Change)
	}
	wantCounts(t, "one peer left", r.Counts, tracker.Counts{Incomplete: 1, Downloaded: 1})
	// ...the last peer's stop removes it, with the swarm's last figures...
	r = update(t, c, stopped(h, 3, "2001:db8::3"), purgeEmpty)
	if !r.Change.Has(bittorrent.PeerRemoved | bittorrent.SwarmRemoved) {
		t.Errorf("stop of the last peer: change %b, want PeerRemoved and SwarmRemoved", r.Change)
	}
	wantCounts(t, "last peer stopped", r.Counts, tracker.Counts{Downloaded: 1})
	wantCounts(t, "removed swarm", scrape(t, c, h), tracker.Counts{})
	// ...and a stop repeated finds nothing to remove.
	if r = update(t, c, stopped(h, 3, "2001:db8::3"), purgeEmpty); r.Change != 0 {
		t.Errorf("stop for a removed swarm: change %b", r.Change)
	}
	r = announce(t, c, Leecher(h, 4, "10.0.0.4"), 50)
	if !r.Change.Has(bittorrent.SwarmAdded) || r.Counts != (tracker.Counts{Incomplete: 1}) {
		t.Errorf("swarm made again: change %b, counts %+v; want SwarmAdded and a fresh count", r.Change, r.Counts)
	}
}

// testUpdateEvent: the store applies the Update's event, not the
// announce's: the tracker keeps a user who may not leech out of the swarm
// by sending Stopped with the client's own announce.
func testUpdateEvent(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	out := tracker.Update{Event: bittorrent.Stopped}
	if r := update(t, c, Leecher(h, 1, "10.0.0.1"), out); r.Change != 0 || len(r.Peers) != 0 {
		t.Errorf("started announce kept out of an unknown swarm: change %b, %d peers", r.Change, len(r.Peers))
	}
	wantCounts(t, "no swarm made", scrape(t, c, h), tracker.Counts{})
	announce(t, c, Leecher(h, 1, "10.0.0.1"), 50)
	announce(t, c, Leecher(h, 2, "10.0.0.2"), 50)
	if r := update(t, c, Leecher(h, 1, "10.0.0.1"), out); !r.Change.Has(bittorrent.PeerRemoved) || len(r.Peers) != 0 {
		t.Errorf("started announce kept out of its swarm: change %b, %d peers; want it removed", r.Change, len(r.Peers))
	}
	// Completed counts by the Update too.
	done := completed(h, 2, "10.0.0.2")
	if r := update(t, c, done, tracker.Update{Event: bittorrent.None}); r.Change.Has(bittorrent.Snatched) {
		t.Error("a completed announce counted a download its Update did not ask for")
	}
	if r := update(t, c, Seeder(h, 2, "10.0.0.2"), tracker.Update{Event: bittorrent.Completed}); !r.Change.Has(bittorrent.Snatched) {
		t.Error("the Update's completed was not counted")
	}
	wantCounts(t, "scrape", scrape(t, c, h), tracker.Counts{Complete: 1, Downloaded: 1})
}

func testCompletedOnce(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	announce(t, c, Leecher(h, 1, "10.0.0.1"), 50)
	done := completed(h, 1, "10.0.0.1")
	r := announce(t, c, done, 50)
	if !r.Change.Has(bittorrent.Snatched|bittorrent.SeederAfter) || r.Change.Has(bittorrent.SeederBefore) {
		t.Errorf("completed: change %b", r.Change)
	}
	wantCounts(t, "completed", r.Counts, tracker.Counts{Complete: 1, Downloaded: 1})
	r = announce(t, c, done, 50) // a client repeating itself
	if r.Change.Has(bittorrent.Snatched) {
		t.Error("a second completed from the same peer counted again")
	}
	wantCounts(t, "completed twice", r.Counts, tracker.Counts{Complete: 1, Downloaded: 1})
	// A seeder from the start (left=0, started) is no download.
	announce(t, c, Seeder(h, 2, "10.0.0.2"), 50)
	wantCounts(t, "scrape", scrape(t, c, h), tracker.Counts{Complete: 2, Downloaded: 1})
}

func testSeederGetsLeechers(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	for n := range 5 {
		announce(t, c, Seeder(h, n, fmt.Sprintf("10.0.0.%d", n+1)), 50)
	}
	for n := 5; n < 8; n++ {
		announce(t, c, Leecher(h, n, fmt.Sprintf("10.0.0.%d", n+1)), 50)
	}
	r := announce(t, c, Seeder(h, 0, "10.0.0.1"), 50)
	if len(r.Peers) != 3 {
		t.Fatalf("seeder got %d peers, want the 3 leechers", len(r.Peers))
	}
	for _, p := range r.Peers {
		if n := int(p.Addr.Port()) - 1000; n < 5 {
			t.Errorf("seeder was given seeder %d", n)
		}
	}
	r = announce(t, c, Leecher(h, 5, "10.0.0.6"), 50)
	if len(r.Peers) != 7 {
		t.Errorf("leecher got %d peers, want the 7 others", len(r.Peers))
	}
}

func testNoSelf(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	for n := range 40 { // past the point where a list keeps an index
		announce(t, c, Leecher(h, n, "10.0.0.1"), 50)
	}
	for n := range 40 {
		r := announce(t, c, Leecher(h, n, "10.0.0.1"), 50)
		if len(r.Peers) != 39 {
			t.Fatalf("peer %d got %d peers, want 39", n, len(r.Peers))
		}
		seen := map[bittorrent.PeerID]bool{}
		for _, p := range r.Peers {
			if p.ID == ID(n) {
				t.Fatalf("peer %d was given itself", n)
			}
			if seen[p.ID] {
				t.Fatalf("peer %d was given %q twice", n, p.ID)
			}
			seen[p.ID] = true
		}
	}
}

func testNumWant(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	for n := range 10 {
		announce(t, c, Leecher(h, n, "10.0.0.1"), 50)
	}
	for _, want := range []int{0, 1, 5, 9, 100} {
		r := announce(t, c, Leecher(h, 0, "10.0.0.1"), want)
		if len(r.Peers) != min(want, 9) {
			t.Errorf("want %d: got %d peers", want, len(r.Peers))
		}
	}
}

func testFamilies(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	announce(t, c, Seeder(h, 1, "10.1.2.3"), 50)
	announce(t, c, Seeder(h, 2, "2001:db8::2"), 50)
	r := announce(t, c, Leecher(h, 3, "10.9.9.9"), 50)
	if len(r.Peers) != 2 {
		t.Fatalf("got %d peers, want 2", len(r.Peers))
	}
	// The announcer's own family first.
	if got, want := r.Peers[0].Addr, netip.MustParseAddrPort("10.1.2.3:1001"); got != want || r.Peers[0].ID != ID(1) {
		t.Errorf("first peer %v %q, want %v %q", got, r.Peers[0].ID, want, ID(1))
	}
	if got, want := r.Peers[1].Addr, netip.MustParseAddrPort("[2001:db8::2]:1002"); got != want || r.Peers[1].ID != ID(2) {
		t.Errorf("second peer %v %q, want %v %q", got, r.Peers[1].ID, want, ID(2))
	}
	r = announce(t, c, Leecher(h, 4, "2001:db8::4"), 50)
	if len(r.Peers) != 3 {
		t.Errorf("IPv6 announcer got %v, want all three others", r.Peers)
	}
	// With room for one, an announcer gets a peer of its own family.
	if r = announce(t, c, Leecher(h, 4, "2001:db8::4"), 1); len(r.Peers) != 1 || !r.Peers[0].Addr.Addr().Is6() {
		t.Errorf("IPv6 announcer with numwant 1 got %v, want the IPv6 peer", r.Peers)
	}
	if r = announce(t, c, Leecher(h, 3, "10.9.9.9"), 1); len(r.Peers) != 1 || r.Peers[0].ID != ID(1) {
		t.Errorf("IPv4 announcer with numwant 1 got %v, want IPv4 peer 1", r.Peers)
	}
}

func testReannounce(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	announce(t, c, Leecher(h, 1, "10.0.0.1"), 50)
	moved := Seeder(h, 1, "10.0.0.99")
	moved.Port = 7777
	moved.Event = bittorrent.None
	r := announce(t, c, moved, 50)
	if r.Change.Has(bittorrent.PeerAdded) || r.Change.Has(bittorrent.SeederBefore) || !r.Change.Has(bittorrent.SeederAfter) {
		t.Errorf("leecher turned seeder: change %b", r.Change)
	}
	wantCounts(t, "turned seeder", r.Counts, tracker.Counts{Complete: 1})
	r = announce(t, c, Leecher(h, 2, "10.0.0.2"), 50)
	if len(r.Peers) != 1 || r.Peers[0].Addr != netip.MustParseAddrPort("10.0.0.99:7777") {
		t.Errorf("peers %v, want the new address 10.0.0.99:7777", r.Peers)
	}
	back := Leecher(h, 1, "10.0.0.99")
	back.Event = bittorrent.None
	r = announce(t, c, back, 50)
	if !r.Change.Has(bittorrent.SeederBefore) || r.Change.Has(bittorrent.SeederAfter) {
		t.Errorf("seeder turned leecher: change %b", r.Change)
	}
	wantCounts(t, "turned leecher", r.Counts, tracker.Counts{Incomplete: 2})
}

func testScrapeUnknown(t *testing.T, c tracker.Conn) {
	announce(t, c, Leecher(Hash(1), 1, "10.0.0.1"), 50)
	out, err := c.Scrape(ctx, []bittorrent.InfoHash{Hash(2), Hash(1)}, nil)
	if err != nil || len(out) != 2 {
		t.Fatalf("Scrape = %v, %v", out, err)
	}
	if out[0].InfoHash != Hash(2) || out[0].Counts != (tracker.Counts{}) {
		t.Errorf("unknown hash: %+v", out[0])
	}
	if out[1].InfoHash != Hash(1) || out[1].Counts != (tracker.Counts{Incomplete: 1}) {
		t.Errorf("known hash: %+v", out[1])
	}
}

func testPurge(t *testing.T, c tracker.Conn) {
	old, fresh := Hash(1), Hash(2)
	announce(t, c, Leecher(old, 1, "10.0.0.1"), 50)
	announce(t, c, Seeder(old, 2, "2001:db8::2"), 50)
	announce(t, c, Seeder(fresh, 3, "10.0.0.3"), 50)
	p, err := c.Purge(ctx, time.Now().Add(-time.Hour), true)
	if err != nil || !reflect.DeepEqual(p, tracker.Purged{}) {
		t.Fatalf("Purge of nothing expired = %+v, %v", p, err)
	}
	p, err = c.Purge(ctx, time.Now().Add(2*time.Second), true)
	if err != nil {
		t.Fatal(err)
	}
	emptied := map[bittorrent.InfoHash]bool{}
	for _, h := range p.Emptied {
		emptied[h] = true
	}
	if len(p.Emptied) != 2 || !emptied[old] || !emptied[fresh] {
		t.Errorf("Purge emptied %v, want both swarms", p.Emptied)
	}
	p.Emptied = nil
	want := tracker.Purged{Swarms: 2, Peers: [2]int{2, 1}, Seeders: [2]int{1, 1}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Purge = %+v, want %+v", p, want)
	}
	wantCounts(t, "purged swarm", scrape(t, c, old), tracker.Counts{})
	// A purged swarm comes back fresh.
	r := announce(t, c, Leecher(old, 1, "10.0.0.1"), 50)
	if !r.Change.Has(bittorrent.SwarmAdded) {
		t.Errorf("re-created swarm: change %b", r.Change)
	}
}

func testPurgeKeep(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	announce(t, c, Leecher(h, 1, "10.0.0.1"), 50)
	done := completed(h, 1, "10.0.0.1")
	announce(t, c, done, 50)
	p, err := c.Purge(ctx, time.Now().Add(2*time.Second), false)
	if err != nil || p.Swarms != 0 || p.Peers[0] != 1 || len(p.Emptied) != 1 || p.Emptied[0] != h {
		t.Fatalf("Purge = %+v, %v", p, err)
	}
	// The swarm, and its download count, stay.
	wantCounts(t, "kept swarm", scrape(t, c, h), tracker.Counts{Downloaded: 1})
	r := announce(t, c, Leecher(h, 2, "10.0.0.2"), 50)
	if r.Change.Has(bittorrent.SwarmAdded) {
		t.Error("kept swarm was created again")
	}
}

func testOwnUser(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	as := func(a *tracker.Announce, uid uint32) result {
		t.Helper()
		return update(t, c, a, tracker.Update{Event: a.Event, Want: 50, UserID: uid})
	}
	as(Seeder(h, 1, "10.0.0.1"), 7)       // user 7's seedbox
	as(Seeder(h, 2, "2001:db8::2"), 7)    // and its IPv6 side
	as(Seeder(h, 3, "10.0.0.3"), 8)       // someone else
	r := as(Leecher(h, 4, "10.0.0.4"), 7) // user 7 at home
	if len(r.Peers) != 1 || r.Peers[0].ID != ID(3) {
		t.Errorf("user 7 was given %v, want only peer 3 of user 8", r.Peers)
	}
	wantCounts(t, "counts include every user", r.Counts, tracker.Counts{Complete: 3, Incomplete: 1})
	r = as(Leecher(h, 5, "10.0.0.5"), 9)
	if len(r.Peers) != 4 {
		t.Errorf("user 9 got %d peers, want all 4", len(r.Peers))
	}
}

// testLargeSwarm churns a swarm big enough to need an index against a
// model of what it should hold.
func testLargeSwarm(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	const peers = 300
	model := map[int]bool{} // peer -> seeder
	state := uint32(1)
	next := func(n int) int { state = state*1664525 + 1013904223; return int(state>>8) % n }
	for step := range 5000 {
		n := next(peers)
		var a *tracker.Announce
		switch op := next(10); {
		case op < 5:
			a = Leecher(h, n, "10.0.0.1")
			model[n] = false
		case op < 8:
			a = Seeder(h, n, "10.0.0.1")
			model[n] = true
		default:
			a = Leecher(h, n, "10.0.0.1")
			a.Event = bittorrent.Stopped
			delete(model, n)
		}
		if n%7 == 0 { // some of them on IPv6
			a.Addr = netip.MustParseAddr("2001:db8::1")
		}
		uid := uint32(n%5 + 1) // ignored by public stores
		r := update(t, c, a, tracker.Update{Event: a.Event, UserID: uid})
		var want tracker.Counts
		for _, seeder := range model {
			if seeder {
				want.Complete++
			} else {
				want.Incomplete++
			}
		}
		want.Downloaded = r.Downloaded
		if r.Counts != want {
			t.Fatalf("step %d: counts %+v, want %+v", step, r.Counts, want)
		}
	}
	// Every peer in the model is found again (no duplicates made), and is
	// handed out.
	newcomer := Leecher(h, peers+1, "10.0.0.1")
	r := update(t, c, newcomer, tracker.Update{Event: newcomer.Event, Want: 1000, UserID: 100}) // nobody else's user
	if len(r.Peers) != len(model) {
		t.Fatalf("a newcomer got %d peers, want all %d", len(r.Peers), len(model))
	}
	for _, p := range r.Peers {
		var n int
		fmt.Sscanf(string(p.ID[8:]), "%d", &n)
		if _, ok := model[n]; !ok {
			t.Errorf("peer %d was handed out but had stopped", n)
		}
	}
}

var dualStacked = tracker.Options{Peering: tracker.Peering{DualStacked: true}}

// ids returns the peer numbers of peers, in order.
func ids(peers []tracker.Peer) []int {
	var out []int
	for _, p := range peers {
		var n int
		fmt.Sscanf(string(p.ID[8:]), "%d", &n)
		out = append(out, n)
	}
	return out
}

func testDualStacked(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	// Peer 1 announces over both families (BEP 7), in either order.
	announce(t, c, Seeder(h, 1, "10.0.0.1"), 50)
	r := announce(t, c, Seeder(h, 1, "2001:db8::1"), 50)
	wantCounts(t, "one dual-stacked seeder", r.Counts, tracker.Counts{Complete: 1})
	announce(t, c, Leecher(h, 2, "2001:db8::2"), 50)
	r = announce(t, c, Leecher(h, 2, "10.0.0.2"), 50)
	wantCounts(t, "and a dual-stacked leecher", r.Counts, tracker.Counts{Complete: 1, Incomplete: 1})
	announce(t, c, Leecher(h, 3, "10.0.0.3"), 50)    // IPv4 only
	announce(t, c, Leecher(h, 4, "2001:db8::4"), 50) // IPv6 only

	// An IPv4 announcer gets peer 1 once, by its IPv4 address.
	r = announce(t, c, Leecher(h, 3, "10.0.0.3"), 50)
	got := map[string]bool{}
	for _, p := range r.Peers {
		got[p.Addr.String()] = true
	}
	if len(r.Peers) != 3 || !got["10.0.0.1:1001"] || !got["10.0.0.2:1002"] || !got["[2001:db8::4]:1004"] {
		t.Errorf("IPv4 announcer got %v, want peers 1 and 2 by IPv4 and 4 by IPv6", r.Peers)
	}
	// An IPv6 announcer gets peer 1 once, by its IPv6 address.
	r = announce(t, c, Leecher(h, 4, "2001:db8::4"), 50)
	got = map[string]bool{}
	for _, p := range r.Peers {
		got[p.Addr.String()] = true
	}
	if len(r.Peers) != 3 || !got["[2001:db8::1]:1001"] || !got["[2001:db8::2]:1002"] || !got["10.0.0.3:1003"] {
		t.Errorf("IPv6 announcer got %v, want peers 1 and 2 by IPv6 and 3 by IPv4", r.Peers)
	}
	// The dual-stacked leecher never gets itself, by either address.
	r = announce(t, c, Leecher(h, 2, "2001:db8::2"), 50)
	for _, n := range ids(r.Peers) {
		if n == 2 {
			t.Errorf("dual-stacked peer 2 was given itself: %v", r.Peers)
		}
	}
	// Completing over one family, then leaving over one: counted once.
	done := completed(h, 2, "10.0.0.2")
	r = announce(t, c, done, 0)
	wantCounts(t, "after completed over IPv4", r.Counts, tracker.Counts{Complete: 2, Incomplete: 2, Downloaded: 1})
	announce(t, c, Seeder(h, 2, "2001:db8::2"), 0)
	stop := Seeder(h, 1, "10.0.0.1")
	stop.Event = bittorrent.Stopped
	r = announce(t, c, stop, 0)
	wantCounts(t, "peer 1 stopped over IPv4 only: still there over IPv6", r.Counts, tracker.Counts{Complete: 2, Incomplete: 2, Downloaded: 1})
	stop.Addr = netip.MustParseAddr("2001:db8::1")
	r = announce(t, c, stop, 0)
	wantCounts(t, "peer 1 stopped over both", r.Counts, tracker.Counts{Complete: 1, Incomplete: 2, Downloaded: 1})
}

func testDualStackedExpiry(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	announce(t, c, Seeder(h, 1, "10.0.0.1"), 50)
	announce(t, c, Seeder(h, 1, "2001:db8::1"), 50)
	p, err := c.Purge(ctx, time.Now().Add(2*time.Second), true)
	if err != nil || p.Peers != [2]int{1, 1} || p.Swarms != 1 || len(p.Emptied) != 1 {
		t.Errorf("Purge = %+v, %v; want both records of the peer and the swarm", p, err)
	}
	wantCounts(t, "after expiry", scrape(t, c, h), tracker.Counts{})
}

func testDualStackedStoppedLast(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	announce(t, c, Seeder(h, 1, "10.0.0.1"), 50)
	announce(t, c, Seeder(h, 1, "2001:db8::1"), 50)
	r := update(t, c, stopped(h, 1, "10.0.0.1"), purgeEmpty)
	if r.Change.Has(bittorrent.SwarmRemoved) {
		t.Errorf("dual-stacked peer stopped over IPv4 only: change %b, but it is still there over IPv6", r.Change)
	}
	wantCounts(t, "still there over IPv6", r.Counts, tracker.Counts{Complete: 1})
	r = update(t, c, stopped(h, 1, "2001:db8::1"), purgeEmpty)
	if !r.Change.Has(bittorrent.SwarmRemoved) {
		t.Errorf("dual-stacked peer stopped over both: change %b, want SwarmRemoved", r.Change)
	}
	wantCounts(t, "after both", scrape(t, c, h), tracker.Counts{})
}

func testRespectAF(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	announce(t, c, Seeder(h, 1, "10.0.0.1"), 50)
	announce(t, c, Seeder(h, 2, "2001:db8::2"), 50)
	if r := announce(t, c, Leecher(h, 3, "10.0.0.3"), 50); len(r.Peers) != 1 || !r.Peers[0].Addr.Addr().Is4() {
		t.Errorf("IPv4 announcer got %v, want only the IPv4 peer", r.Peers)
	}
	if r := announce(t, c, Leecher(h, 4, "2001:db8::4"), 50); len(r.Peers) != 1 || !r.Peers[0].Addr.Addr().Is6() {
		t.Errorf("IPv6 announcer got %v, want only the IPv6 peer", r.Peers)
	}
}

func testPreferredSubnet(t *testing.T, c tracker.Conn) {
	h := Hash(1)
	// Peers 1-20 elsewhere, 21-23 in the announcer's /24; the same in IPv6.
	for n := 1; n <= 20; n++ {
		announce(t, c, Seeder(h, n, fmt.Sprintf("10.9.%d.1", n)), 0)
		announce(t, c, Seeder(h, 100+n, fmt.Sprintf("2001:db8:%x::1", n)), 0)
	}
	for n := 21; n <= 23; n++ {
		announce(t, c, Seeder(h, n, fmt.Sprintf("10.1.2.%d", n)), 0)
		announce(t, c, Seeder(h, 100+n, fmt.Sprintf("2001:db8:0:0:%x::1", n)), 0)
	}
	for range 10 { // the start is random: try several
		r := announce(t, c, Leecher(h, 50, "10.1.2.50"), 3)
		for _, n := range ids(r.Peers) {
			if n < 21 || n > 23 {
				t.Fatalf("IPv4 announcer in 10.1.2.0/24 got %v, want peers 21-23 first", ids(r.Peers))
			}
		}
		r = announce(t, c, Leecher(h, 150, "2001:db8::50"), 3)
		for _, n := range ids(r.Peers) {
			if n < 121 || n > 123 {
				t.Fatalf("IPv6 announcer in 2001:db8::/64 got %v, want peers 121-123 first", ids(r.Peers))
			}
		}
		// Asking for more gives the rest too.
		if r := announce(t, c, Leecher(h, 50, "10.1.2.50"), 10); len(r.Peers) != 10 {
			t.Fatalf("numwant 10 gave %d peers", len(r.Peers))
		}
	}
}
