package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"math"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/chihaya/chihaya/backend/sqlbatch"
)

// This file is what a flush writes to Gazelle's tables, and how: one
// statement per table and chunk of rows, for either schema flavour. The
// flush itself (one transaction, exactly once, the bisection of refused
// rows) is flush.go's.

// writeRows writes b's rows in tx: credit, torrents, tokens, snatches,
// peers, each table in chunks through execRows.
func (c *Conn) writeRows(ctx context.Context, tx *sql.Tx, b *batch) error {
	// Keys in order, so that concurrent writers lock rows in one order.
	users := sqlbatch.SortedKeys(b.users, cmp.Compare[uint32])
	torrents := sqlbatch.SortedKeys(b.torrents, cmp.Compare[uint32])
	tokens := sqlbatch.SortedKeys(b.tokens, func(x, y tokenKey) int {
		return cmp.Or(cmp.Compare(x.uid, y.uid), cmp.Compare(x.tid, y.tid))
	})
	peers := sqlbatch.SortedKeys(b.peers, func(x, y peerKey) int {
		return cmp.Or(cmp.Compare(x.tid, y.tid), cmp.Compare(x.uid, y.uid), strings.Compare(string(x.peerID[:]), string(y.peerID[:])))
	})

	if err := execRows(ctx, c, tx, c.q.userTable(), users, func(keys []uint32) (string, []any) {
		args := make([]any, 0, 3*len(keys))
		for _, k := range keys {
			r := b.users[k]
			args = append(args, int64(k), r.up, r.down)
		}
		return c.q.userStatement(len(keys)), args
	}); err != nil {
		return err
	}
	if err := execRows(ctx, c, tx, c.q.torrentTable(), torrents, func(keys []uint32) (string, []any) {
		args := make([]any, 0, 5*len(keys))
		for _, k := range keys {
			r := b.torrents[k]
			args = append(args, int64(k), clamp32(int64(r.seeders)), clamp32(int64(r.leechers)), r.snatched, r.balance)
		}
		return c.q.torrentStatement(len(keys)), args
	}); err != nil {
		return err
	}
	if err := execRows(ctx, c, tx, "users_freeleeches", tokens, func(keys []tokenKey) (string, []any) {
		args := make([]any, 0, 3*len(keys))
		for _, k := range keys {
			args = append(args, int64(k.uid), int64(k.tid), b.tokens[k])
		}
		return tokenStatement(len(keys)), args
	}); err != nil {
		return err
	}
	if err := execRows(ctx, c, tx, "xbt_snatched", b.snatches, func(rows []snatchRow) (string, []any) {
		args := make([]any, 0, 4*len(rows))
		for _, r := range rows {
			args = append(args, int64(r.uid), int64(r.tid), clamp32(r.at), ipText(r.addr, c.widths.snatchIP))
		}
		return snatchStatement(len(rows)), args
	}); err != nil {
		return err
	}
	return execRows(ctx, c, tx, "xbt_files_users", peers, func(keys []peerKey) (string, []any) {
		args := make([]any, 0, 15*len(keys))
		for _, k := range keys {
			r := b.peers[k]
			active := int64(0)
			if r.active {
				active = 1
			}
			args = append(args, int64(k.uid), int64(k.tid), active,
				clamp64(r.up), clamp64(r.down), clamp32(r.upspeed), clamp32(r.downspeed),
				clamp64(r.left), clamp64(r.corrupt), clamp32(r.timespent), clamp32(int64(r.announced)),
				ipText(r.addr, c.widths.peerIP), k.peerID[:], cleanUserAgent(r.userAgent, c.widths.userAgent),
				clamp32(r.mtime))
		}
		return peerStatement(len(keys)), args
	})
}

// Statements, built for n rows. A derived table of the rows lets the
// credit statements skip users and torrents that no longer exist (a
// foreign-key error under Ocelot) and, for the classic schema, update
// users_main and torrents without ever inserting into them.

func derived(sb *strings.Builder, n int, cols ...string) {
	sb.WriteString("(SELECT ")
	for i, col := range cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("? AS ")
		sb.WriteString(col)
	}
	row := " UNION ALL SELECT ?" + strings.Repeat(", ?", len(cols)-1)
	for range n - 1 {
		sb.WriteString(row)
	}
	sb.WriteString(") AS d")
}

func values(sb *strings.Builder, n, cols int) {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(row)
	}
}

func (q queries) userTable() string {
	if q.classic {
		return "users_main"
	}
	return "users_leech_stats"
}

func (q queries) torrentTable() string {
	if q.classic {
		return "torrents"
	}
	return "torrents_leech_stats"
}

func (q queries) userStatement(n int) string {
	var sb strings.Builder
	if q.classic {
		sb.WriteString("UPDATE users_main m JOIN ")
		derived(&sb, n, "i", "u", "d")
		sb.WriteString(" ON m.ID = d.i SET m.Uploaded = m.Uploaded + d.u, m.Downloaded = m.Downloaded + d.d")
		return sb.String()
	}
	sb.WriteString("INSERT INTO users_leech_stats (UserID, Uploaded, Downloaded) SELECT d.i, d.u, d.d FROM ")
	derived(&sb, n, "i", "u", "d")
	sb.WriteString(" WHERE EXISTS (SELECT 1 FROM users_main m WHERE m.ID = d.i)" +
		" ON DUPLICATE KEY UPDATE Uploaded = Uploaded + VALUES(Uploaded), Downloaded = Downloaded + VALUES(Downloaded)")
	return sb.String()
}

func (q queries) torrentStatement(n int) string {
	var sb strings.Builder
	if q.classic {
		sb.WriteString("UPDATE torrents t JOIN ")
		derived(&sb, n, "i", "s", "l", "n", "b")
		sb.WriteString(" ON t.ID = d.i SET t.Seeders = d.s, t.Leechers = d.l, t.Snatched = t.Snatched + d.n," +
			" t.balance = d.b, t.last_action = IF(d.s > 0, NOW(), t.last_action)")
		return sb.String()
	}
	sb.WriteString("INSERT INTO torrents_leech_stats (TorrentID, Seeders, Leechers, Snatched, Balance) SELECT d.i, d.s, d.l, d.n, d.b FROM ")
	derived(&sb, n, "i", "s", "l", "n", "b")
	sb.WriteString(" WHERE EXISTS (SELECT 1 FROM torrents t WHERE t.ID = d.i)" +
		" ON DUPLICATE KEY UPDATE Seeders = VALUES(Seeders), Leechers = VALUES(Leechers)," +
		" Snatched = Snatched + VALUES(Snatched), Balance = VALUES(Balance)," +
		" last_action = IF(VALUES(Seeders) > 0, NOW(), last_action)")
	return sb.String()
}

// tokenStatement records token use. Time is written (it has no default:
// Ocelot's statement fails in strict mode), and kept on existing rows.
func tokenStatement(n int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO users_freeleeches (UserID, TorrentID, Time, Downloaded) SELECT d.u, d.t, NOW(), d.d FROM ")
	derived(&sb, n, "u", "t", "d")
	sb.WriteString(" WHERE EXISTS (SELECT 1 FROM users_main m WHERE m.ID = d.u)" +
		" AND EXISTS (SELECT 1 FROM torrents t WHERE t.ID = d.t)" +
		" ON DUPLICATE KEY UPDATE Downloaded = Downloaded + VALUES(Downloaded)")
	return sb.String()
}

func snatchStatement(n int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO xbt_snatched (uid, fid, tstamp, IP) VALUES ")
	values(&sb, n, 4)
	return sb.String()
}

// peerStatement writes xbt_files_users rows. Every row carries the peer's
// whole state (a "light" Ocelot row is one whose counters did not move and
// whose speeds are 0), so a row Gazelle deleted meanwhile is never
// recreated as a false seeder. ip and useragent follow the peer.
func peerStatement(n int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO xbt_files_users (uid, fid, active, uploaded, downloaded, upspeed, downspeed," +
		" remaining, corrupt, timespent, announced, ip, peer_id, useragent, mtime) VALUES ")
	values(&sb, n, 15)
	sb.WriteString(" ON DUPLICATE KEY UPDATE active = VALUES(active), uploaded = VALUES(uploaded)," +
		" downloaded = VALUES(downloaded), upspeed = VALUES(upspeed), downspeed = VALUES(downspeed)," +
		" remaining = VALUES(remaining), corrupt = VALUES(corrupt), timespent = VALUES(timespent)," +
		" announced = VALUES(announced), ip = VALUES(ip), useragent = VALUES(useragent), mtime = VALUES(mtime)")
	return sb.String()
}

func clamp32(v int64) int64  { return min(max(v, math.MinInt32), math.MaxInt32) }
func clamp64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

// ipText is an address as Gazelle stores it: dotted quad for IPv4; an
// address whose text does not fit the column (IPv6 in Gazelle's
// varchar(15)) and a protected user's (invalid here) are stored as "".
func ipText(a netip.Addr, width int) string {
	if !a.IsValid() {
		return ""
	}
	s := a.WithZone("").String()
	if len(s) > width {
		return ""
	}
	return s
}

// cleanUserAgent makes a User-Agent storable in Gazelle's varchar(51)
// column under any character set: valid UTF-8, no control characters, no
// characters beyond the BMP (a utf8mb3 column refuses them), at most width
// characters.
func cleanUserAgent(s string, width int) string {
	clean := len(s) <= width
	for i := 0; clean && i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			clean = false
		}
	}
	if clean {
		return s
	}
	var sb strings.Builder
	n := 0
	for _, r := range s {
		if n == width {
			break
		}
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r > 0xffff {
			r = '?'
		}
		sb.WriteRune(r)
		n++
	}
	return sb.String()
}
