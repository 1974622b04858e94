package mysql

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/internal/mariadbtest"
)

func TestMain(m *testing.M) { mariadbtest.Main(m) }

var schemaFiles = map[string]string{
	SchemaLeechStats: "testdata/gazelle-min.sql",
	SchemaClassic:    "testdata/gazelle-min-classic.sql",
}

// bothSchemas runs f once per schema flavour.
func bothSchemas(t *testing.T, f func(t *testing.T, schema string)) {
	for _, s := range []string{SchemaLeechStats, SchemaClassic} {
		t.Run(s, func(t *testing.T) { f(t, s) })
	}
}

// site is a test database in Gazelle's shape.
type site struct {
	t      testing.TB
	schema string
	dsn    string
	db     *sql.DB
}

func newSite(t testing.TB, schema string) *site {
	return newSiteOn(t, mariadbtest.Shared(t), schema)
}

func newSiteOn(t testing.TB, srv *mariadbtest.Server, schema string) *site {
	t.Helper()
	dsn := srv.Database(t, schemaFiles[schema])
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &site{t: t, schema: schema, dsn: dsn, db: db}
}

func (s *site) exec(q string, args ...any) sql.Result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	return r
}

func (s *site) int(q string, args ...any) int64 {
	s.t.Helper()
	var v sql.NullInt64
	if err := s.db.QueryRow(q, args...).Scan(&v); err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	return v.Int64
}

func (s *site) str(q string, args ...any) string {
	s.t.Helper()
	var v sql.NullString
	if err := s.db.QueryRow(q, args...).Scan(&v); err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	return v.String
}

// passkey makes a 32-character passkey.
func passkey(n int) string { return fmt.Sprintf("pk%030d", n) }

// hash makes a torrent's info_hash.
func hash(n int) [20]byte { return sha1.Sum([]byte(fmt.Sprint("torrent", n))) }

// peerID makes a peer_id.
func peerID(n int) [20]byte {
	var p [20]byte
	copy(p[:], fmt.Sprintf("-qB4650-%012d", n))
	return p
}

// addUser inserts an enabled, visible user who may leech.
func (s *site) addUser(n int) uint32 {
	s.t.Helper()
	r := s.exec("INSERT INTO users_main (torrent_pass, Enabled) VALUES (?, '1')", passkey(n))
	id, _ := r.LastInsertId()
	if s.schema == SchemaLeechStats {
		s.exec("INSERT INTO users_leech_stats (UserID) VALUES (?)", id)
	}
	return uint32(id)
}

// newSiteWithOne is a test database with one user (passkey(1)) and one
// normal torrent (hash(1)).
func newSiteWithOne(t testing.TB, schema string) (s *site, uid, tid uint32) {
	t.Helper()
	s = newSite(t, schema)
	return s, s.addUser(1), s.addTorrent(1, "0")
}

// addTorrent inserts a torrent with FreeTorrent free ("0", "1", "2").
func (s *site) addTorrent(n int, free string) uint32 {
	s.t.Helper()
	h := hash(n)
	r := s.exec("INSERT INTO torrents (info_hash, FreeTorrent) VALUES (?, ?)", h[:], free)
	id, _ := r.LastInsertId()
	if s.schema == SchemaLeechStats {
		s.exec("INSERT INTO torrents_leech_stats (TorrentID) VALUES (?)", id)
	}
	return uint32(id)
}

// credit is a user's Uploaded and Downloaded.
func (s *site) credit(uid uint32) (up, down int64) {
	s.t.Helper()
	q := "SELECT Uploaded, Downloaded FROM users_leech_stats WHERE UserID = ?"
	if s.schema == SchemaClassic {
		q = "SELECT Uploaded, Downloaded FROM users_main WHERE ID = ?"
	}
	err := s.db.QueryRow(q, uid).Scan(&up, &down)
	if err == sql.ErrNoRows {
		return 0, 0
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return up, down
}

// totalCredit sums every user's credit.
func (s *site) totalCredit() (up, down int64) {
	s.t.Helper()
	q := "SELECT COALESCE(SUM(Uploaded), 0), COALESCE(SUM(Downloaded), 0) FROM users_leech_stats"
	if s.schema == SchemaClassic {
		q = "SELECT COALESCE(SUM(Uploaded), 0), COALESCE(SUM(Downloaded), 0) FROM users_main"
	}
	if err := s.db.QueryRow(q).Scan(&up, &down); err != nil {
		s.t.Fatal(err)
	}
	return up, down
}

type torrentFigures struct {
	seeders, leechers, snatched, balance int64
}

func (s *site) torrentFigures(tid uint32) torrentFigures {
	s.t.Helper()
	q := "SELECT Seeders, Leechers, Snatched, Balance FROM torrents_leech_stats WHERE TorrentID = ?"
	if s.schema == SchemaClassic {
		q = "SELECT Seeders, Leechers, Snatched, balance FROM torrents WHERE ID = ?"
	}
	var f torrentFigures
	if err := s.db.QueryRow(q, tid).Scan(&f.seeders, &f.leechers, &f.snatched, &f.balance); err != nil {
		s.t.Fatal(err)
	}
	return f
}

// open opens the backend on the site with params on top of the test
// defaults (no background flush: tests call Flush).
func (s *site) open(params map[string]any) *Conn {
	s.t.Helper()
	p := map[string]any{"dsn": s.dsn, "schema": s.schema, "flush_interval": "1h"}
	for k, v := range params {
		p[k] = v
	}
	raw, _ := json.Marshal(p)
	be, err := backend.Open("mysql", raw)
	if err != nil {
		s.t.Fatalf("open: %v", err)
	}
	c := be.(*Conn)
	s.t.Cleanup(func() { c.Close() })
	return c
}

func flush(t testing.TB, c *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if n := c.QueueDepth(); n != 0 {
		t.Fatalf("after a flush, %d rows are still queued", n)
	}
}

var addr4 = netip.MustParseAddrPort("192.0.2.10:51413")

// announce is an announce of user uid's peer on torrent n (id tid).
type announce struct {
	uid, tid uint32
	torrent  int
	peer     int
	up, down uint64
	left     uint64
	event    bittorrent.Event
	snatched bool
	at       time.Time
	addr     netip.AddrPort
	agent    string
}

func (a announce) backend() backend.Announce {
	at := a.at
	if at.IsZero() {
		at = time.Now()
	}
	addr := a.addr
	if !addr.IsValid() {
		addr = addr4
	}
	agent := a.agent
	if agent == "" {
		agent = "qBittorrent/4.6.5"
	}
	return backend.Announce{
		InfoHash:   hash(a.torrent),
		PeerID:     peerID(a.peer),
		Addr:       addr,
		Uploaded:   a.up,
		Downloaded: a.down,
		Left:       a.left,
		Event:      a.event,
		Snatched:   a.snatched,
		Seeders:    1,
		Leechers:   1,
		Time:       at,
		UserID:     a.uid,
		TorrentID:  a.tid,
		UserAgent:  agent,
	}
}

func record(t testing.TB, c *Conn, anns ...announce) {
	t.Helper()
	for _, a := range anns {
		if err := c.RecordAnnounce(a.backend()); err != nil {
			t.Fatalf("RecordAnnounce(%+v): %v", a, err)
		}
	}
}
