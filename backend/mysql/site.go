package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// user is a site user as Ocelot keeps one.
type user struct {
	id        uint32
	canLeech  bool
	protected bool
	mul       *multipliers // nil: 1.0 both ways
}

// torrent is a registered torrent as Ocelot keeps one.
type torrent struct {
	id      uint32
	free    backend.FreeType
	tokened map[uint32]struct{} // users holding a freeleech token on it
	mul     *multipliers        // nil: 1.0 both ways
}

// multipliers are a user's or torrent's credit multipliers (the param
// multipliers). Users and torrents without them (multipliers off, both
// 1.0, or added by add_user/add_torrent since the last load) have none:
// nil means 1.0 both ways.
type multipliers struct{ up, down float64 }

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

func (m *multipliers) factors() (up, down float64) {
	if m == nil {
		return 1, 1
	}
	return m.up, m.down
}

// scaleCredit is n × f rounded to the nearest byte, never negative and
// saturated at the largest int64; f == 1 keeps n exactly.
func scaleCredit(n int64, f float64) int64 {
	if f == 1 || n <= 0 {
		return max(n, 0)
	}
	if !(f > 0) {
		return 0
	}
	v := math.Round(float64(n) * f)
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

type delReason struct {
	code int
	at   time.Time
}

// siteState is what the tracker asks on every announce, answered from
// memory under a read lock. Updates and reloads take the write lock.
type siteState struct {
	mu        sync.RWMutex
	users     map[string]*user // by passkey
	byID      map[uint32]*user
	torrents  map[[20]byte]*torrent
	whitelist []string
	reasons   map[[20]byte]delReason

	// While a reload reads the database, the site's updates are applied
	// to the old state and remembered here, to be applied again to the
	// new one: none is lost to the swap.
	reloading int
	replay    []func(*siteState)

	reloadMu sync.Mutex // one reload at a time
}

func (s *siteState) init() {
	s.users = map[string]*user{}
	s.byID = map[uint32]*user{}
	s.torrents = map[[20]byte]*torrent{}
	s.reasons = map[[20]byte]delReason{}
}

// apply runs an update under the write lock.
func (s *siteState) apply(f func(*siteState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
	if s.reloading > 0 {
		s.replay = append(s.replay, f)
	}
}

func (s *siteState) userCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.users)
}

func (s *siteState) torrentCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.torrents)
}

func (s *siteState) whitelistLen() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.whitelist)
}

func (s *siteState) expireReasons(now time.Time, lifetime time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, r := range s.reasons {
		if now.Sub(r.at) > lifetime {
			delete(s.reasons, h)
		}
	}
}

// User returns the enabled user with passkey.
func (c *Conn) User(passkey string) (backend.User, bool) {
	c.site.mu.RLock()
	u, ok := c.site.users[passkey]
	var out backend.User
	if ok {
		out = backend.User{ID: u.id, CanLeech: u.canLeech, Protected: u.protected}
	}
	c.site.mu.RUnlock()
	return out, ok
}

// Torrent returns the registered torrent with the info_hash, or the reason
// the site gave when it deleted it (for del_reason_lifetime).
func (c *Conn) Torrent(infoHash bittorrent.InfoHash) (backend.Torrent, bool, string) {
	c.site.mu.RLock()
	defer c.site.mu.RUnlock()
	if t, ok := c.site.torrents[infoHash]; ok {
		return backend.Torrent{ID: t.id, Free: t.free}, true, ""
	}
	r, ok := c.site.reasons[infoHash]
	if !ok || time.Since(r.at) > c.p.DeleteReasonLifetime.Duration {
		return backend.Torrent{}, false, ""
	}
	return backend.Torrent{}, false, DeleteReason(r.code)
}

// ClientAllowed reports whether the peer_id starts with a whitelisted
// prefix; an empty whitelist allows every client.
func (c *Conn) ClientAllowed(peerID bittorrent.PeerID) bool {
	c.site.mu.RLock()
	defer c.site.mu.RUnlock()
	if len(c.site.whitelist) == 0 {
		return true
	}
	for _, prefix := range c.site.whitelist {
		if len(prefix) <= 20 && string(peerID[:len(prefix)]) == prefix {
			return true
		}
	}
	return false
}

// deleteReasons are Ocelot's names of Gazelle's deletion reason codes
// (worker::get_del_reason).
var deleteReasons = [...]string{
	"Dupe", "Trump", "Bad File Names", "Bad Folder Names", "Bad Tags",
	"Disallowed Format", "Discs Missing", "Discography", "Edited Log",
	"Inaccurate Bitrate", "Low Bitrate", "Mutt Rip", "Disallowed Source",
	"Encode Errors", "Specifically Banned", "Tracks Missing", "Transcode",
	"Unapproved Cassette", "Unsplit Album", "User Compilation",
	"Wrong Format", "Wrong Media", "Audience Recording",
}

// DeleteReason names a deletion reason code (0-22); any other code has no
// name, and the announcer gets a plain "Unregistered torrent".
func DeleteReason(code int) string {
	if code < 0 || code >= len(deleteReasons) {
		return ""
	}
	return deleteReasons[code]
}

// freeType maps Gazelle's FreeTorrent value as Ocelot's loader does.
func freeType(v string) backend.FreeType {
	switch v {
	case "1":
		return backend.Free
	case "2":
		return backend.Neutral
	}
	return backend.Normal
}

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

// checkMultiplierColumns fails, with multipliers on, when a multiplier
// column is missing: the site adds them.
func (c *Conn) checkMultiplierColumns(ctx context.Context) error {
	if !c.p.Multipliers {
		return nil
	}
	rows, err := c.db.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('users_main', 'torrents')
		AND COLUMN_NAME IN ('UpMultiplier', 'DownMultiplier')`)
	if err != nil {
		return fmt.Errorf("backend.params: multipliers: reading the columns: %w", err)
	}
	var have [len(multiplierColumns)]bool
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			rows.Close()
			return fmt.Errorf("backend.params: multipliers: reading the columns: %w", err)
		}
		for i, tc := range multiplierColumns {
			if strings.EqualFold(table, tc[0]) && strings.EqualFold(column, tc[1]) {
				have[i] = true
			}
		}
	}
	if err := closeRows(rows); err != nil {
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

// loaded is one read of the site's tables.
type loaded struct {
	users     map[string]*user
	byID      map[uint32]*user
	torrents  map[[20]byte]*torrent
	stats     map[uint32]torrentStats
	whitelist []string
}

func (c *Conn) load(ctx context.Context) (*loaded, error) {
	l := &loaded{
		users:    map[string]*user{},
		byID:     map[uint32]*user{},
		torrents: map[[20]byte]*torrent{},
		stats:    map[uint32]torrentStats{},
	}
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("loading the site: %w", err)
	}
	defer tx.Rollback()

	rows, err := tx.QueryContext(ctx, c.q.torrents)
	if err != nil {
		return nil, fmt.Errorf("loading torrents: %w", err)
	}
	for rows.Next() {
		var (
			id       uint32
			hash     []byte
			free     sql.NullString
			snatched int64
			balance  int64
			up, down sql.NullFloat64
		)
		dest := []any{&id, &hash, &free, &snatched, &balance}
		if c.q.multipliers {
			dest = append(dest, &up, &down)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, fmt.Errorf("loading torrents: %w", err)
		}
		if len(hash) != 20 {
			continue // Ocelot skips empty info_hashes; others cannot match
		}
		l.torrents[[20]byte(hash)] = &torrent{id: id, free: freeType(free.String), tokened: map[uint32]struct{}{}, mul: newMultipliers(up, down)}
		l.stats[id] = torrentStats{snatched: snatched, balance: balance}
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("loading torrents: %w", err)
	}

	rows, err = tx.QueryContext(ctx, c.q.tokens)
	if err != nil {
		return nil, fmt.Errorf("loading freeleech tokens: %w", err)
	}
	for rows.Next() {
		var (
			uid  uint32
			hash []byte
		)
		if err := rows.Scan(&uid, &hash); err != nil {
			rows.Close()
			return nil, fmt.Errorf("loading freeleech tokens: %w", err)
		}
		if len(hash) == 20 {
			if t := l.torrents[[20]byte(hash)]; t != nil {
				t.tokened[uid] = struct{}{}
			}
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("loading freeleech tokens: %w", err)
	}

	rows, err = tx.QueryContext(ctx, c.q.users)
	if err != nil {
		return nil, fmt.Errorf("loading users: %w", err)
	}
	for rows.Next() {
		var (
			id        uint32
			canLeech  sql.NullInt64
			passkey   string
			protected sql.NullInt64
			up, down  sql.NullFloat64
		)
		dest := []any{&id, &canLeech, &passkey, &protected}
		if c.q.multipliers {
			dest = append(dest, &up, &down)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, fmt.Errorf("loading users: %w", err)
		}
		u := &user{id: id, canLeech: canLeech.Int64 != 0, protected: protected.Int64 != 0, mul: newMultipliers(up, down)}
		l.users[passkey] = u
		l.byID[id] = u
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("loading users: %w", err)
	}

	rows, err = tx.QueryContext(ctx, c.q.whitelist)
	if err != nil {
		return nil, fmt.Errorf("loading the client whitelist: %w", err)
	}
	for rows.Next() {
		var prefix sql.NullString
		if err := rows.Scan(&prefix); err != nil {
			rows.Close()
			return nil, fmt.Errorf("loading the client whitelist: %w", err)
		}
		if prefix.Valid {
			l.whitelist = append(l.whitelist, prefix.String)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("loading the client whitelist: %w", err)
	}
	return l, nil
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// Reload reads users, torrents (with their tokens) and the whitelist again,
// as Ocelot does on SIGUSR1, and swaps them in. Announces are answered
// from the old lists meanwhile (Ocelot refuses them); the site's updates
// that arrive during the read are applied to the new lists too. A torrent
// keeps its in-memory balance and snatch count.
func (c *Conn) Reload(ctx context.Context) error {
	s := &c.site
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()

	s.mu.Lock()
	s.reloading++
	s.mu.Unlock()
	if c.duringReload != nil {
		c.duringReload()
	}
	l, err := c.load(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloading--
	replay := s.replay
	if s.reloading == 0 {
		s.replay = nil
	}
	if err != nil {
		return err
	}
	s.users, s.byID, s.torrents, s.whitelist = l.users, l.byID, l.torrents, l.whitelist
	for _, f := range replay {
		f(s)
	}
	c.acc.addStats(l.stats)
	return nil
}

// columnWidths are the lengths of the varchar columns the tracker fills
// from client data, read from the schema so that nothing is too long.
type columnWidths struct {
	peerIP, userAgent, snatchIP int
}

func (c *Conn) loadWidths(ctx context.Context) error {
	c.widths = columnWidths{peerIP: 15, userAgent: 51, snatchIP: 15} // Gazelle's
	rows, err := c.db.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH
		FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND CHARACTER_MAXIMUM_LENGTH IS NOT NULL
		AND ((TABLE_NAME = 'xbt_files_users' AND COLUMN_NAME IN ('ip', 'useragent'))
		  OR (TABLE_NAME = 'xbt_snatched' AND COLUMN_NAME = 'IP'))`)
	if err != nil {
		return fmt.Errorf("reading column widths: %w", err)
	}
	for rows.Next() {
		var (
			table, column string
			width         int64
		)
		if err := rows.Scan(&table, &column, &width); err != nil {
			rows.Close()
			return fmt.Errorf("reading column widths: %w", err)
		}
		w := int(min(width, 1<<16))
		switch {
		case table == "xbt_snatched":
			c.widths.snatchIP = w
		case bytes.EqualFold([]byte(column), []byte("ip")):
			c.widths.peerIP = w
		default:
			c.widths.userAgent = w
		}
	}
	return closeRows(rows)
}

// loadBaselines restores each active peer's last flushed counters from
// xbt_files_users, so that its next announce is credited against them.
func (c *Conn) loadBaselines(ctx context.Context) (int, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT fid, uid, peer_id, uploaded, downloaded, corrupt, remaining, announced, timespent, mtime
		FROM xbt_files_users WHERE active = 1`)
	if err != nil {
		return 0, fmt.Errorf("loading peers from xbt_files_users: %w", err)
	}
	horizon := time.Now().Add(-baselineLifetime).Unix()
	n := 0
	c.acc.mu.Lock()
	defer c.acc.mu.Unlock()
	for rows.Next() {
		var (
			fid, uid                uint32
			peerID                  []byte
			up, down, corrupt, left int64
			announced, spent, mtime int64
		)
		if err := rows.Scan(&fid, &uid, &peerID, &up, &down, &corrupt, &left, &announced, &spent, &mtime); err != nil {
			rows.Close()
			return n, fmt.Errorf("loading peers from xbt_files_users: %w", err)
		}
		if len(peerID) != 20 || mtime < horizon {
			continue
		}
		k := peerKey{tid: fid, uid: uid, peerID: [20]byte(peerID)}
		c.acc.peers[k] = &peerState{
			up:        uint64(max(up, 0)),
			down:      uint64(max(down, 0)),
			corrupt:   uint64(max(corrupt, 0)),
			left:      uint64(max(left, 0)),
			first:     mtime - spent,
			last:      mtime,
			announces: uint32(max(announced, 0)),
		}
		n++
	}
	return n, closeRows(rows)
}
