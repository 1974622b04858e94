package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
	goredis "github.com/redis/go-redis/v9"
)

// script is a Lua script and its SHA1, by which it is called.
type script struct{ src, sha string }

func newScript(src string) script {
	sum := sha1.Sum([]byte(src))
	return script{src, hex.EncodeToString(sum[:])}
}

var (
	announce = newScript(announceScript)
	purge    = newScript(purgeScript)
	claim    = newScript(claimScript)
)

// load loads the scripts into every server, so that the first calls find
// them; a server that lost them (restarted, SCRIPT FLUSH) gets them again
// from run.
func (s *Store) load(ctx context.Context) error {
	for _, sc := range []script{announce, purge, claim} {
		if err := s.client.ScriptLoad(ctx, sc.src).Err(); err != nil {
			return err
		}
	}
	return nil
}

// run calls a script by its SHA1 and, if the server does not have it
// (NOSCRIPT), by its source, which loads it again.
func (s *Store) run(ctx context.Context, sc script, keys []string, args ...any) (any, error) {
	res, err := s.client.EvalSha(ctx, sc.sha, keys, args...).Result()
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		res, err = s.client.Eval(ctx, sc.src, keys, args...).Result()
	}
	return res, err
}

// Expiry: the index's keys, and the batches a reaper works in.
const (
	// indexKeys is the number of the expiry index's sorted sets. Their
	// hash tags are chosen to fall in 16 equal ranges of the cluster's
	// slots, so that a cluster of up to 16 masters each holds some.
	indexKeys = 16
	// claimBatch is the most swarms a reaper takes from one index key at
	// a time; purgeBatch the most peers one script call removes from a
	// swarm, so that no call keeps Redis busy for long.
	claimBatch = 256
	purgeBatch = 1000
)

// indexTag returns the hash tag of index key k: the first of "0", "1", ...
// (prefixed with k) whose slot is in the k-th sixteenth of the slots.
func indexTag(k int) string {
	lo, hi := k*16384/indexKeys, (k+1)*16384/indexKeys
	for n := 0; ; n++ {
		tag := strconv.Itoa(k) + "-" + strconv.Itoa(n)
		if slot := int(crc16(tag) % 16384); slot >= lo && slot < hi {
			return tag
		}
	}
}

// crc16 is Redis Cluster's key hash: CRC-16/XMODEM.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Purge removes the peers last seen before before, as tracker.Conn's Purge
// does, visiting only the swarms the expiry index says have such peers.
// Several trackers may purge at once: each swarm is taken by one of them.
func (s *Store) Purge(ctx context.Context, before time.Time, purgeEmpty bool) (tracker.Purged, error) {
	var p tracker.Purged
	cutoff := before.Unix()
	for _, key := range s.index {
		// Each round takes a batch; a swarm put back with expired peers
		// left (a full batch) comes round again.
		for round := 0; ; round++ {
			if err := ctx.Err(); err != nil {
				return p, err
			}
			n, err := s.purgeRound(ctx, key, cutoff, purgeEmpty, &p)
			if err != nil {
				return p, fmt.Errorf("redis: purge: %w", err)
			}
			if n == 0 || round > 1<<20 {
				break
			}
		}
	}
	return p, nil
}

// purgeRound takes up to claimBatch swarms due for expiry out of one index
// key, purges them and puts back those with peers left. It returns how many
// swarms it found due.
func (s *Store) purgeRound(ctx context.Context, key string, cutoff int64, purgeEmpty bool, p *tracker.Purged) (int, error) {
	tctx, cancel := context.WithTimeout(ctx, 10*s.p.Timeout.Duration)
	defer cancel()
	start := time.Now()
	due, err := s.client.ZRangeByScoreWithScores(tctx, key, &goredis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(cutoff, 10), Count: claimBatch,
	}).Result()
	if err != nil || len(due) == 0 {
		s.metrics.observe(opPurge, start, err)
		return 0, err
	}
	args := make([]any, 0, 2*len(due))
	for _, z := range due {
		args = append(args, z.Member, strconv.FormatFloat(z.Score, 'f', -1, 64))
	}
	res, err := s.run(tctx, claim, []string{key}, args...)
	if err != nil {
		s.metrics.observe(opPurge, start, err)
		return 0, err
	}
	claimed, _ := res.([]any)
	hashes := make([]bittorrent.InfoHash, 0, len(claimed))
	for _, m := range claimed {
		if ms, ok := m.(string); ok && len(ms) == len(bittorrent.InfoHash{}) {
			hashes = append(hashes, bittorrent.InfoHash([]byte(ms)))
		}
	}
	results, err := s.purgeSwarms(tctx, hashes, cutoff, purgeEmpty)
	if err != nil {
		// The claimed swarms are out of the index: put them back as they
		// were, so that the next pass tries them again.
		s.reindex(context.Background(), key, due)
		s.metrics.observe(opPurge, start, err)
		return 0, err
	}
	pipe := s.client.Pipeline()
	var back []goredis.Z // the swarms with peers left, for the index again
	for i, r := range results {
		if len(r) != 8 {
			continue
		}
		p.Peers[0] += toInt(r[0])
		p.Seeders[0] += toInt(r[1])
		p.Peers[1] += toInt(r[2])
		p.Seeders[1] += toInt(r[3])
		if toInt(r[4]) == 1 {
			p.Emptied = append(p.Emptied, hashes[i])
		}
		p.Swarms += toInt(r[5])
		if oldest := toInt(r[6]); oldest >= 0 {
			back = append(back, goredis.Z{Score: float64(oldest), Member: string(hashes[i][:])})
		}
	}
	if len(back) > 0 {
		pipe.ZAddNX(tctx, key, back...)
		if _, err = pipe.Exec(tctx); err != nil {
			// A swarm left out of the index would never expire: try once
			// more, on a fresh deadline, before the error is reported.
			s.reindex(context.Background(), key, back)
		}
	}
	s.metrics.observe(opPurge, start, err)
	return len(due), err
}

// purgeSwarms runs purgeScript on each swarm, in one pipeline.
func (s *Store) purgeSwarms(ctx context.Context, hashes []bittorrent.InfoHash, cutoff int64, purgeEmpty bool) ([][]any, error) {
	pe, dual := "0", "0"
	if purgeEmpty {
		pe = "1"
	}
	if s.dual {
		dual = "1"
	}
	for attempt := 0; ; attempt++ {
		pipe := s.client.Pipeline()
		cmds := make([]*goredis.Cmd, len(hashes))
		for i := range hashes {
			keys := s.swarmKeys(&hashes[i])
			scriptKeys := keys[:]
			if !s.cluster {
				scriptKeys = append(scriptKeys, s.totals)
			}
			cmds[i] = pipe.EvalSha(ctx, purge.sha, scriptKeys, cutoff, pe, purgeBatch, dual)
		}
		if len(cmds) == 0 {
			return nil, nil
		}
		_, err := pipe.Exec(ctx)
		if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") && attempt == 0 {
			if err := s.load(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		out := make([][]any, len(cmds))
		for i, c := range cmds {
			out[i], _ = c.Val().([]any)
		}
		return out, nil
	}
}

// reindex puts swarms back in an index key with their old scores.
func (s *Store) reindex(ctx context.Context, key string, zs []goredis.Z) {
	ctx, cancel := context.WithTimeout(ctx, s.p.Timeout.Duration)
	defer cancel()
	s.client.ZAddNX(ctx, key, zs...)
}

// Totals returns the number of swarms, seeders and leechers in the store,
// as all the trackers sharing it made them; ok is false on a cluster,
// where the store keeps no totals (they would be on another slot than the
// swarms, out of the scripts' reach).
func (s *Store) Totals(ctx context.Context) (swarms, seeders, leechers int64, ok bool, err error) {
	if s.cluster {
		return 0, 0, 0, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.p.Timeout.Duration)
	defer cancel()
	v, err := s.client.HMGet(ctx, s.totals, "n", "s", "l").Result()
	if err != nil || len(v) != 3 {
		return 0, 0, 0, false, err
	}
	return int64(atoi(v[0])), int64(atoi(v[1])), int64(atoi(v[2])), true, nil
}
