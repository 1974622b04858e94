// Package workload defines the benchmark's announces: request i (from 1)
// is always the same peer of the same torrent, so the first N requests
// insert N distinct peers and every later one re-announces one of them.
//
// Torrent popularity is skewed (a few swarms of thousands of peers, a long
// tail of small ones) and 30% of the peers are seeders. The info_hashes are
// pseudo-random bytes, so that swarms spread over a store's shards as real
// info_hashes (SHA-1 digests) do. The same numbers were produced by the
// team's earlier wrk script and its Python hash list, so figures taken with
// either compare.
package workload

import "math"

// InfoHash returns torrent k's info_hash (k from 1).
func InfoHash(k int) (h [20]byte) {
	x := uint32(uint64(k) * 2654435761)
	for j := range h {
		x = x*69069 + 1
		h[j] = byte(x >> 24)
	}
	return h
}

// Peer is the announce of request i.
type Peer struct {
	Torrent    int // which info_hash, from 1: InfoHash(Torrent)
	Serial     int // i itself: the peer_id is "-BM0001-" and Serial in 12 digits
	Port       uint16
	Left       uint64 // 0 for the 30% of peers that are seeders
	Uploaded   uint64
	Downloaded uint64
}

// phi spreads the requests' positions evenly over [0, 1).
const phi = 0.6180339887498949

// Request returns the announce of request i (from 1) over torrents
// torrents.
func Request(i, torrents int) Peer {
	// A low-discrepancy uniform u in [0,1); u² skews popularity toward
	// the first torrents.
	u := math.Mod(float64(i)*phi, 1)
	p := Peer{
		Torrent:    int(u*u*float64(torrents)) + 1,
		Serial:     i,
		Port:       uint16(1024 + i%60000),
		Left:       uint64(1000 + i%100000),
		Uploaded:   uint64(i%7919) * 1024,
		Downloaded: uint64(i%104729) * 16,
	}
	if i%10 < 3 {
		p.Left = 0
	}
	return p
}

// PeerID returns the peer's 20-byte peer_id: "-BM0001-" and the serial in
// 12 decimal digits.
func (p *Peer) PeerID() (id [20]byte) {
	copy(id[:], "-BM0001-")
	v := p.Serial
	for j := len(id) - 1; j >= 8; j-- {
		id[j] = byte('0' + v%10)
		v /= 10
	}
	return id
}
