package unit3d

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/chihaya/chihaya/backend/sqlbatch"
	"github.com/golang/glog"
)

// This file is what a flush writes (unit3d.md §6): UNIT3D-Announce's
// statements, with their ON DUPLICATE KEY UPDATE clauses as they are
// (VALUES(col), for MariaDB; history's assignments in their order, since
// seedtime must read the old updated_at, seeder and active).

const peersSQL = "INSERT INTO peers (peer_id, ip, port, agent, uploaded, downloaded, `left`, active, seeder," +
	" visible, created_at, updated_at, torrent_id, user_id, connectable) VALUES %s" +
	" ON DUPLICATE KEY UPDATE ip = VALUES(ip), port = VALUES(port), agent = VALUES(agent)," +
	" uploaded = VALUES(uploaded), downloaded = VALUES(downloaded), `left` = VALUES(`left`)," +
	" active = VALUES(active), seeder = VALUES(seeder), visible = VALUES(visible)," +
	" updated_at = VALUES(updated_at), connectable = VALUES(connectable)"

const historySQL = "INSERT INTO history (user_id, torrent_id, agent, uploaded, actual_uploaded, client_uploaded," +
	" downloaded, actual_downloaded, client_downloaded, seeder, active, seedtime, immune, created_at, updated_at," +
	" completed_at) VALUES %s ON DUPLICATE KEY UPDATE" +
	" agent = VALUES(agent)," +
	" uploaded = uploaded + VALUES(uploaded)," +
	" actual_uploaded = actual_uploaded + VALUES(actual_uploaded)," +
	" client_uploaded = VALUES(client_uploaded)," +
	" downloaded = downloaded + VALUES(downloaded)," +
	" actual_downloaded = actual_downloaded + VALUES(actual_downloaded)," +
	" client_downloaded = VALUES(client_downloaded)," +
	" seedtime = CASE WHEN updated_at + INTERVAL ? SECOND > VALUES(updated_at)" +
	" AND seeder = TRUE AND active = TRUE AND VALUES(seeder) = TRUE" +
	" THEN seedtime + TIMESTAMPDIFF(SECOND, updated_at, VALUES(updated_at)) ELSE seedtime END," +
	" updated_at = VALUES(updated_at)," +
	" seeder = VALUES(seeder)," +
	" active = VALUES(active)," +
	" immune = (immune = TRUE AND VALUES(immune) = TRUE)," +
	" completed_at = COALESCE(completed_at, VALUES(completed_at))"

const torrentsSQL = "INSERT INTO torrents (id, name, description, info_hash, file_name, num_file, size, seeders," +
	" leechers, times_completed, user_id, created_at, updated_at, balance, balance_offset) VALUES %s" +
	" ON DUPLICATE KEY UPDATE seeders = seeders + VALUES(seeders), leechers = leechers + VALUES(leechers)," +
	" times_completed = times_completed + VALUES(times_completed), updated_at = VALUES(updated_at)," +
	" balance = balance + VALUES(balance)"

const usersSQL = "INSERT INTO users (id, username, email, password, passkey, group_id, rsskey, uploaded, downloaded)" +
	" VALUES %s ON DUPLICATE KEY UPDATE uploaded = uploaded + VALUES(uploaded), downloaded = downloaded + VALUES(downloaded)"

const uihSQL = "INSERT INTO unregistered_info_hashes (user_id, info_hash, created_at, updated_at) VALUES %s" +
	" ON DUPLICATE KEY UPDATE updated_at = VALUES(updated_at)"

const announcesSQL = "INSERT INTO announces (user_id, torrent_id, uploaded, downloaded, `left`, corrupt, peer_id," +
	" port, numwant, created_at, event, `key`) VALUES %s"

var zeroHash = make([]byte, 20)

func statement(format, row string, n int) string {
	return fmt.Sprintf(format, sqlbatch.Placeholders(row, n))
}

func (c *Conn) dropper() sqlbatch.Dropper {
	return sqlbatch.Dropper{Name: "unit3d backend", Count: &c.dropped}
}

// writeRows writes b in tx: rows of users and torrents the database no
// longer has are filtered out first (UNIT3D only soft-deletes them; a
// hard-deleted one would otherwise fail its whole statement), then each
// table is written in key order, in chunks that sqlbatch.ExecRows splits
// down to a refused row.
func (c *Conn) writeRows(ctx context.Context, tx *sql.Tx, b *batch) error {
	if err := c.filter(ctx, tx, b); err != nil {
		return err
	}
	now := time.Now().UTC()
	d := c.dropper()
	torrents := sqlbatch.SortedKeys(b.torrents, cmp.Compare[uint32])
	if err := sqlbatch.ExecRows(ctx, tx, d, "torrents", torrents, func(keys []uint32) (string, []any) {
		args := make([]any, 0, 9*len(keys))
		for _, k := range keys {
			r := b.torrents[k]
			args = append(args, k, zeroHash, clampI32(r.seeders), clampI32(r.leechers), clampI32(r.completed), now, now, r.balance)
		}
		return statement(torrentsSQL, "(?, '', '', ?, '', 0, 0, ?, ?, ?, 1, ?, ?, ?, 0)", len(keys)), args
	}); err != nil {
		return err
	}
	users := sqlbatch.SortedKeys(b.users, cmp.Compare[uint32])
	if err := sqlbatch.ExecRows(ctx, tx, d, "users", users, func(keys []uint32) (string, []any) {
		args := make([]any, 0, 3*len(keys))
		for _, k := range keys {
			r := b.users[k]
			args = append(args, k, r.uploaded, r.downloaded)
		}
		return statement(usersSQL, "(?, '', '', '', '', 0, '', ?, ?)", len(keys)), args
	}); err != nil {
		return err
	}
	peers := sqlbatch.SortedKeys(b.peers, func(x, y peerRowKey) int {
		return cmp.Or(cmp.Compare(x.uid, y.uid), cmp.Compare(x.tid, y.tid), strings.Compare(string(x.id[:]), string(y.id[:])))
	})
	if err := sqlbatch.ExecRows(ctx, tx, d, "peers", peers, func(keys []peerRowKey) (string, []any) {
		args := make([]any, 0, 15*len(keys))
		for _, k := range keys {
			r := b.peers[k]
			args = append(args, k.id[:], r.addr.Addr().Unmap().AsSlice(), r.addr.Port(), r.agent,
				r.uploaded, r.downloaded, r.left, r.active, r.seeder, r.visible, r.created, r.updated, k.tid, k.uid, r.connects)
		}
		return statement(peersSQL, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", len(keys)), args
	}); err != nil {
		return err
	}
	history := sqlbatch.SortedKeys(b.history, func(x, y histKey) int {
		return cmp.Or(cmp.Compare(x.uid, y.uid), cmp.Compare(x.tid, y.tid))
	})
	ttl := int64((c.p.ActivePeerTTL.Duration + c.p.PeerExpiryInterval.Duration) / time.Second)
	if err := sqlbatch.ExecRows(ctx, tx, d, "history", history, func(keys []histKey) (string, []any) {
		args := make([]any, 0, 15*len(keys)+1)
		for _, k := range keys {
			r := b.history[k]
			var completed any
			if !r.completed.IsZero() {
				completed = r.completed
			}
			args = append(args, k.uid, k.tid, r.agent, r.uploaded, r.actualUp, r.clientUp,
				r.downloaded, r.actualDown, r.clientDown, r.seeder, r.active, r.immune, r.created, r.updated, completed)
		}
		args = append(args, ttl)
		return statement(historySQL, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)", len(keys)), args
	}); err != nil {
		return err
	}
	uih := sqlbatch.SortedKeys(b.uih, func(x, y uihKey) int {
		return cmp.Or(strings.Compare(string(x.hash[:]), string(y.hash[:])), cmp.Compare(x.uid, y.uid))
	})
	if err := sqlbatch.ExecRows(ctx, tx, d, "unregistered_info_hashes", uih, func(keys []uihKey) (string, []any) {
		args := make([]any, 0, 4*len(keys))
		for _, k := range keys {
			r := b.uih[k]
			args = append(args, k.uid, k.hash[:], r.created, r.updated)
		}
		return statement(uihSQL, "(?, ?, ?, ?)", len(keys)), args
	}); err != nil {
		return err
	}
	return sqlbatch.ExecRows(ctx, tx, d, "announces", b.announces, func(rows []annRow) (string, []any) {
		args := make([]any, 0, 12*len(rows))
		for _, r := range rows {
			args = append(args, r.uid, r.tid, r.uploaded, r.downloaded, r.left, r.corrupt, r.peerID[:], r.port,
				min(r.numwant, math.MaxUint16), r.created, r.event, cutKey(r.key))
		}
		return statement(announcesSQL, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", len(rows)), args
	})
}

// cutKey makes a client's key fit announces.key, varchar(255) utf8mb4.
func cutKey(k string) string {
	k = strings.ToValidUTF8(k, "?")
	if n := 0; len(k) > 255 {
		for i := range k {
			if n == 255 {
				return k[:i]
			}
			n++
		}
	}
	return k
}

// filter drops the rows of users and torrents missing from the database,
// read in tx (under a shared lock, so that they stay until the commit).
func (c *Conn) filter(ctx context.Context, tx *sql.Tx, b *batch) error {
	tids, uids := map[uint32]bool{}, map[uint32]bool{}
	for k := range b.torrents {
		tids[k] = false
	}
	for k := range b.users {
		uids[k] = false
	}
	for k := range b.peers {
		tids[k.tid], uids[k.uid] = false, false
	}
	for k := range b.history {
		tids[k.tid], uids[k.uid] = false, false
	}
	for k := range b.uih {
		uids[k.uid] = false
	}
	if err := exist(ctx, tx, "torrents", tids); err != nil {
		return err
	}
	if err := exist(ctx, tx, "users", uids); err != nil {
		return err
	}
	drop := func(table string, gone bool, key any) bool {
		if gone {
			c.dropped.Add(1)
			glog.Warningf("unit3d backend: %s: dropping the row of a user or torrent no longer in the database: %+v", table, key)
		}
		return gone
	}
	for k := range b.torrents {
		if drop("torrents", !tids[k], k) {
			delete(b.torrents, k)
		}
	}
	for k := range b.users {
		if drop("users", !uids[k], k) {
			delete(b.users, k)
		}
	}
	for k := range b.peers {
		if drop("peers", !tids[k.tid] || !uids[k.uid], k) {
			delete(b.peers, k)
		}
	}
	for k := range b.history {
		if drop("history", !tids[k.tid] || !uids[k.uid], k) {
			delete(b.history, k)
		}
	}
	for k := range b.uih {
		if drop("unregistered_info_hashes", !uids[k.uid], k) {
			delete(b.uih, k)
		}
	}
	return nil
}

// exist sets ids[id] for the ids table has, ChunkRows at a time.
func exist(ctx context.Context, tx *sql.Tx, table string, ids map[uint32]bool) error {
	keys := sqlbatch.SortedKeys(ids, cmp.Compare[uint32])
	for len(keys) > 0 {
		n := min(len(keys), sqlbatch.ChunkRows)
		args := make([]any, n)
		for i, k := range keys[:n] {
			args[i] = k
		}
		q := "SELECT id FROM " + table + " WHERE id IN (" + sqlbatch.Placeholders("?", n) + ") LOCK IN SHARE MODE"
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		for rows.Next() {
			var id uint32
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func clampI32(v int64) int64 { return min(max(v, math.MinInt32), math.MaxInt32) }
