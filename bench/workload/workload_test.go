package workload

import (
	"encoding/hex"
	"testing"
)

// The expected values were computed by the team's earlier Python hash list
// and the wrk script's arithmetic, so that runs of either compare.
func TestInfoHash(t *testing.T) {
	for _, tc := range []struct {
		k    int
		want string
	}{
		{1, "fd19871d89b03cddd4fc703dd81c5383753a245e"},
		{2, "fa33f377e47995572f16b1d66cf984d722bd021f"},
		{20000, "a53cd34136c0a0e3a0b69230d62e8c92228e5f1f"},
		{1234567, "7d96c50ba6fa2c37ba284d63fb035b9d649cdafe"},
	} {
		h := InfoHash(tc.k)
		if got := hex.EncodeToString(h[:]); got != tc.want {
			t.Errorf("InfoHash(%d) = %s, want %s", tc.k, got, tc.want)
		}
	}
}

func TestRequest(t *testing.T) {
	for _, tc := range []struct {
		i, torrents int
		want        Peer
	}{
		{1, 20000, Peer{Torrent: 7640, Serial: 1, Port: 1025, Left: 0, Uploaded: 1024, Downloaded: 16}},
		{7, 20000, Peer{Torrent: 2129, Serial: 7, Port: 1031, Left: 1007, Uploaded: 7168, Downloaded: 112}},
		{123457, 100000, Peer{Torrent: 38707, Serial: 123457, Port: 4481, Left: 24457, Uploaded: 4784128, Downloaded: 299648}},
		{999999, 500000, Peer{Torrent: 68716, Serial: 999999, Port: 41023, Left: 100999, Uploaded: 2257920, Downloaded: 919008}},
	} {
		if got := Request(tc.i, tc.torrents); got != tc.want {
			t.Errorf("Request(%d, %d) = %+v, want %+v", tc.i, tc.torrents, got, tc.want)
		}
	}
}

func TestRequestSpread(t *testing.T) {
	const torrents = 1000
	seen := make(map[int]int)
	seeders := 0
	for i := 1; i <= 100000; i++ {
		p := Request(i, torrents)
		if p.Torrent < 1 || p.Torrent > torrents {
			t.Fatalf("Request(%d).Torrent = %d, outside 1..%d", i, p.Torrent, torrents)
		}
		seen[p.Torrent]++
		if p.Left == 0 {
			seeders++
		}
	}
	if seeders != 30000 {
		t.Errorf("%d seeders in 100000 peers, want 30000", seeders)
	}
	// u² puts a tenth of the peers in the first 1% of the torrents.
	if first := seen[1] + seen[2] + seen[3] + seen[4] + seen[5] + seen[6] + seen[7] + seen[8] + seen[9] + seen[10]; first < 9000 || first > 11000 {
		t.Errorf("the first 10 torrents got %d peers, want about 10000", first)
	}
}

func TestPeerID(t *testing.T) {
	p := Peer{Serial: 42}
	if id := p.PeerID(); string(id[:]) != "-BM0001-000000000042" {
		t.Errorf("PeerID() = %q", id[:])
	}
}
