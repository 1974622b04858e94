package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/chihaya/chihaya/backend"
)

// This file reads a Gazelle site: the four lists Ocelot loads (torrents,
// their freeleech tokens, users, the client whitelist), what the schema
// says of its columns, and the peers' last flushed counters. Every read
// goes through eachRow.

// queries are one schema flavour's statements.
type queries struct {
	torrents  string // ID, info_hash, FreeTorrent, Snatched, Balance
	users     string
	tokens    string
	whitelist string
	zeroPeers string
	classic   bool
	// multipliers: torrents and users also select UpMultiplier and
	// DownMultiplier, last.
	multipliers bool
}

// multiplierColumns are the columns the param multipliers reads.
var multiplierColumns = [...][2]string{
	{"users_main", "UpMultiplier"},
	{"users_main", "DownMultiplier"},
	{"torrents", "UpMultiplier"},
	{"torrents", "DownMultiplier"},
}

// queriesFor returns Ocelot's queries for the schema flavour; with
// multipliers, the users' and torrents' loads also read their multipliers.
func queriesFor(schema string, withMultipliers bool) queries {
	q := queries{
		users:     "SELECT ID, can_leech, torrent_pass, (Visible='0' OR IP='127.0.0.1') AS Protected FROM users_main WHERE Enabled='1'",
		tokens:    "SELECT uf.UserID, t.info_hash FROM users_freeleeches AS uf JOIN torrents AS t ON t.ID = uf.TorrentID WHERE uf.Expired = '0'",
		whitelist: "SELECT peer_id FROM xbt_client_whitelist",
	}
	if schema == SchemaClassic {
		q.classic = true
		q.torrents = "SELECT ID, info_hash, FreeTorrent, Snatched, balance FROM torrents ORDER BY ID"
		q.zeroPeers = "UPDATE torrents SET Seeders = 0, Leechers = 0 WHERE Seeders <> 0 OR Leechers <> 0"
	} else {
		// A LEFT JOIN, not Ocelot's INNER JOIN: a torrent whose stats row
		// is missing is still served (the first flush creates the row).
		q.torrents = "SELECT t.ID, t.info_hash, t.FreeTorrent, COALESCE(tls.Snatched, 0), COALESCE(tls.Balance, 0) FROM torrents t LEFT JOIN torrents_leech_stats tls ON (tls.TorrentID = t.ID) ORDER BY t.ID"
		q.zeroPeers = "UPDATE torrents_leech_stats SET Seeders = 0, Leechers = 0 WHERE Seeders <> 0 OR Leechers <> 0"
	}
	if withMultipliers {
		q.multipliers = true
		q.users = "SELECT ID, can_leech, torrent_pass, (Visible='0' OR IP='127.0.0.1') AS Protected, UpMultiplier, DownMultiplier FROM users_main WHERE Enabled='1'"
		if q.classic {
			q.torrents = "SELECT ID, info_hash, FreeTorrent, Snatched, balance, UpMultiplier, DownMultiplier FROM torrents ORDER BY ID"
		} else {
			q.torrents = "SELECT t.ID, t.info_hash, t.FreeTorrent, COALESCE(tls.Snatched, 0), COALESCE(tls.Balance, 0), t.UpMultiplier, t.DownMultiplier FROM torrents t LEFT JOIN torrents_leech_stats tls ON (tls.TorrentID = t.ID) ORDER BY t.ID"
		}
	}
	return q
}

// querier runs a query: the database, or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// eachRow runs query and hands every row to take, which scans it with
// scan. It stops at the first error, take's included.
func eachRow(ctx context.Context, db querier, query string, take func(scan func(dest ...any) error) error) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	for rows.Next() {
		if err := take(rows.Scan); err != nil {
			rows.Close()
			return err
		}
	}
	return closeRows(rows)
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// loaded is one read of the site's tables.
type loaded struct {
	multipliers bool // torrents' and users' rows end with their multipliers
	users       map[string]*user
	byID        map[uint32]*user
	torrents    map[[20]byte]*torrent
	stats       map[uint32]torrentStats
	whitelist   []string
}

// load reads the site's four lists in one read-only transaction, in
// order: tokens after torrents, since a token is kept on a loaded torrent
// only.
func (c *Conn) load(ctx context.Context) (*loaded, error) {
	l := &loaded{
		multipliers: c.q.multipliers,
		users:       map[string]*user{},
		byID:        map[uint32]*user{},
		torrents:    map[[20]byte]*torrent{},
		stats:       map[uint32]torrentStats{},
	}
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("loading the site: %w", err)
	}
	defer tx.Rollback()
	for _, list := range []struct {
		what, query string
		take        func(scan func(dest ...any) error) error
	}{
		{"torrents", c.q.torrents, l.takeTorrent},
		{"freeleech tokens", c.q.tokens, l.takeToken},
		{"users", c.q.users, l.takeUser},
		{"the client whitelist", c.q.whitelist, l.takeWhitelisted},
	} {
		if err := eachRow(ctx, tx, list.query, list.take); err != nil {
			return nil, fmt.Errorf("loading %s: %w", list.what, err)
		}
	}
	return l, nil
}

// scanWithMultipliers scans a torrent's or user's row into dest, and its
// multipliers when the load reads them.
func (l *loaded) scanWithMultipliers(scan func(dest ...any) error, dest ...any) (*multipliers, error) {
	var up, down sql.NullFloat64
	if l.multipliers {
		dest = append(dest, &up, &down)
	}
	if err := scan(dest...); err != nil {
		return nil, err
	}
	return newMultipliers(up, down), nil
}

func (l *loaded) takeTorrent(scan func(dest ...any) error) error {
	var (
		id                uint32
		hash              []byte
		free              sql.NullString
		snatched, balance int64
	)
	mul, err := l.scanWithMultipliers(scan, &id, &hash, &free, &snatched, &balance)
	if err != nil {
		return err
	}
	if len(hash) != 20 {
		return nil // Ocelot skips empty info_hashes; others cannot match
	}
	l.torrents[[20]byte(hash)] = &torrent{id: id, free: freeType(free.String, backend.Normal), tokened: map[uint32]struct{}{}, mul: mul}
	l.stats[id] = torrentStats{snatched: snatched, balance: balance}
	return nil
}

func (l *loaded) takeToken(scan func(dest ...any) error) error {
	var (
		uid  uint32
		hash []byte
	)
	if err := scan(&uid, &hash); err != nil {
		return err
	}
	if len(hash) == 20 {
		if t := l.torrents[[20]byte(hash)]; t != nil {
			t.tokened[uid] = struct{}{}
		}
	}
	return nil
}

func (l *loaded) takeUser(scan func(dest ...any) error) error {
	var (
		id                  uint32
		canLeech, protected sql.NullInt64
		passkey             string
	)
	mul, err := l.scanWithMultipliers(scan, &id, &canLeech, &passkey, &protected)
	if err != nil {
		return err
	}
	u := &user{id: id, canLeech: canLeech.Int64 != 0, protected: protected.Int64 != 0, mul: mul}
	l.users[passkey] = u
	l.byID[id] = u
	return nil
}

func (l *loaded) takeWhitelisted(scan func(dest ...any) error) error {
	var prefix sql.NullString
	if err := scan(&prefix); err != nil {
		return err
	}
	if prefix.Valid {
		l.whitelist = append(l.whitelist, prefix.String)
	}
	return nil
}

// freeType maps Gazelle's FreeTorrent value ("0" normal, "1" free, "2"
// neutral); Ocelot reads any other value as other: normal when it loads
// the torrents, neutral in the site's updates.
func freeType(v string, other backend.FreeType) backend.FreeType {
	switch v {
	case "0":
		return backend.Normal
	case "1":
		return backend.Free
	case "2":
		return backend.Neutral
	}
	return other
}

// newMultipliers reads a row's multipliers: NULL is 1.0, a negative (or
// NaN) multiplier is 0. It returns nil for 1.0 both ways.
func newMultipliers(up, down sql.NullFloat64) *multipliers {
	m := multipliers{up: 1, down: 1}
	if up.Valid {
		m.up = up.Float64
	}
	if down.Valid {
		m.down = down.Float64
	}
	if !(m.up >= 0) {
		m.up = 0
	}
	if !(m.down >= 0) {
		m.down = 0
	}
	if m.up == 1 && m.down == 1 {
		return nil
	}
	return &m
}

// checkMultiplierColumns fails, with multipliers on, when a multiplier
// column is missing: the site adds them.
func (c *Conn) checkMultiplierColumns(ctx context.Context) error {
	if !c.p.Multipliers {
		return nil
	}
	var have [len(multiplierColumns)]bool
	err := eachRow(ctx, c.db, `SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('users_main', 'torrents')
		AND COLUMN_NAME IN ('UpMultiplier', 'DownMultiplier')`, func(scan func(dest ...any) error) error {
		var table, column string
		if err := scan(&table, &column); err != nil {
			return err
		}
		for i, tc := range multiplierColumns {
			if strings.EqualFold(table, tc[0]) && strings.EqualFold(column, tc[1]) {
				have[i] = true
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("backend.params: multipliers: reading the columns: %w", err)
	}
	var missing []string
	for i, tc := range multiplierColumns {
		if !have[i] {
			missing = append(missing, tc[0]+"."+tc[1])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("backend.params: multipliers: true needs the column(s) %s, missing from the database (add them as DECIMAL or FLOAT, NULL meaning 1.0, or turn multipliers off)",
			strings.Join(missing, ", "))
	}
	return nil
}

// columnWidths are the lengths of the varchar columns the tracker fills
// from client data, read from the schema so that nothing is too long.
type columnWidths struct {
	peerIP, userAgent, snatchIP int
}

func (c *Conn) loadWidths(ctx context.Context) error {
	c.widths = columnWidths{peerIP: 15, userAgent: 51, snatchIP: 15} // Gazelle's
	err := eachRow(ctx, c.db, `SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH
		FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND CHARACTER_MAXIMUM_LENGTH IS NOT NULL
		AND ((TABLE_NAME = 'xbt_files_users' AND COLUMN_NAME IN ('ip', 'useragent'))
		  OR (TABLE_NAME = 'xbt_snatched' AND COLUMN_NAME = 'IP'))`, func(scan func(dest ...any) error) error {
		var (
			table, column string
			width         int64
		)
		if err := scan(&table, &column, &width); err != nil {
			return err
		}
		w := int(min(width, 1<<16))
		switch {
		case table == "xbt_snatched":
			c.widths.snatchIP = w
		case strings.EqualFold(column, "ip"):
			c.widths.peerIP = w
		default:
			c.widths.userAgent = w
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading column widths: %w", err)
	}
	return nil
}

// loadBaselines restores each active peer's last flushed counters from
// xbt_files_users, so that its next announce is credited against them.
// Rows idle for longer than Gazelle keeps them are left out.
func (c *Conn) loadBaselines(ctx context.Context) (int, error) {
	horizon := time.Now().Add(-baselineLifetime).Unix()
	n := 0
	err := eachRow(ctx, c.db, `SELECT fid, uid, peer_id, uploaded, downloaded, corrupt, remaining, announced, timespent, mtime
		FROM xbt_files_users WHERE active = 1`, func(scan func(dest ...any) error) error {
		var (
			fid, uid                uint32
			peerID                  []byte
			up, down, corrupt, left int64
			announced, spent, mtime int64
		)
		if err := scan(&fid, &uid, &peerID, &up, &down, &corrupt, &left, &announced, &spent, &mtime); err != nil {
			return err
		}
		if len(peerID) != 20 || mtime < horizon {
			return nil
		}
		c.acc.restore(peerKey{tid: fid, uid: uid, peerID: [20]byte(peerID)}, peerState{
			counters:  counters{up: uint64(max(up, 0)), down: uint64(max(down, 0)), corrupt: uint64(max(corrupt, 0))},
			left:      uint64(max(left, 0)),
			first:     mtime - spent,
			last:      mtime,
			announces: uint32(max(announced, 0)),
		})
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("loading peers from xbt_files_users: %w", err)
	}
	return n, nil
}
