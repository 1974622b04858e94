package memory

import (
	"context"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
)

var _ tracker.Lister = (*Store)(nil)

// ScrapeAll appends the figures of every swarm to out, as tracker.Lister's
// ScrapeAll does. It holds one shard's lock at a time, for as long as
// reading that shard's counts takes.
func (s *Store) ScrapeAll(ctx context.Context, out []tracker.Scrape) ([]tracker.Scrape, error) {
	err := s.eachShard(ctx, func(sh *shard) {
		for slot := range sh.swarms {
			if w := &sh.swarms[slot]; w.used {
				out = append(out, tracker.Scrape{InfoHash: w.hash, Counts: sh.counts(w)})
			}
		}
	})
	return out, err
}

// eachShard runs f on every shard in turn, under that shard's lock: one
// lock at a time, so that announces to the other shards go on. It stops
// when ctx ends or the store is closed, with their error.
func (s *Store) eachShard(ctx context.Context, f func(sh *shard)) error {
	for k := range s.shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		sh := &s.shards[k]
		sh.mu.Lock()
		if sh.closed {
			sh.mu.Unlock()
			return errClosed
		}
		f(sh)
		sh.mu.Unlock()
	}
	return nil
}

// Drop removes the swarms of hashes with their peers, as tracker.Lister's
// Drop does.
func (s *Store) Drop(ctx context.Context, hashes []bittorrent.InfoHash) (tracker.Purged, error) {
	var p tracker.Purged
	for i := range hashes {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		sh := s.shard(&hashes[i])
		sh.mu.Lock()
		if sh.closed {
			sh.mu.Unlock()
			return p, errClosed
		}
		if slot, ok := sh.lookup(&hashes[i]); ok {
			p.Add(sh.dropSwarm(slot))
		}
		sh.mu.Unlock()
	}
	return p, nil
}

// dropSwarm removes the swarm at slot and its peers, and counts them as
// Purge does: every record by its family.
func (sh *shard) dropSwarm(slot int32) (p tracker.Purged) {
	w := &sh.swarms[slot]
	p.Peers[0], p.Seeders[0] = int(w.v4.n), int(w.v4.seeders)
	if v := sh.v6(w); v != nil {
		p.Peers[1], p.Seeders[1] = int(v.n), int(v.seeders)
		l := sh.view(&v.peerList, true)
		l.release()
	}
	v4 := sh.view(&w.v4, false)
	v4.release()
	if p.Peers[0]+p.Peers[1] > 0 {
		p.Emptied = append(p.Emptied, w.hash)
	}
	sh.drop(slot)
	p.Swarms = 1
	return p
}
