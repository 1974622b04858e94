package unit3d_test

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend/unit3d"
	"github.com/chihaya/chihaya/config"
	chttp "github.com/chihaya/chihaya/http"
	"github.com/chihaya/chihaya/internal/mariadbtest"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	_ "github.com/chihaya/chihaya/tracker/memory"
	"github.com/go-sql-driver/mysql"
)

func TestMain(m *testing.M) { mariadbtest.Main(m) }

// apiKey is the site's TRACKER_KEY in every test.
const apiKey = "0123456789abcdef0123456789abcdef-key"

// pk is user n's passkey: 32 lower-case hex digits, as UNIT3D makes them.
func pk(n int) string { return fmt.Sprintf("%032x", n) }

// ih is torrent n's info_hash.
func ih(n int) [20]byte { return sha1.Sum([]byte(fmt.Sprint("torrent ", n))) }

// pid is a peer_id: a client prefix, the user and a number.
func pid(user, n int) [20]byte {
	var p [20]byte
	copy(p[:], fmt.Sprintf("-qB4650-%06d%06d", user, n))
	return p
}

// fixture is the site every test starts with (unit3d.md's shapes):
// groups, users 2 to 9 and torrents 1 to 9.
const fixture = `
INSERT INTO ` + "`groups`" + ` (id, slug, download_slots, is_immune, is_freeleech, is_double_upload) VALUES
 (1, 'user', NULL, 0, 0, 0), (2, 'banned', NULL, 0, 0, 0), (3, 'validating', NULL, 0, 0, 0),
 (4, 'disabled', NULL, 0, 0, 0), (5, 'slots', 1, 0, 0, 0), (6, 'immune', NULL, 1, 0, 0),
 (7, 'freeleech', NULL, 0, 1, 0), (8, 'double', NULL, 0, 0, 1);
INSERT INTO users (id, username, email, password, passkey, group_id, rsskey, can_download, is_donor, is_lifetime) VALUES
 (1, 'System', 's@x', '', 'system-passkey-not-for-announces', 1, 'r1', 1, 0, 0),
 (2, 'alice', 'a@x', '', '00000000000000000000000000000002', 1, 'r2', 1, 0, 0),
 (3, 'bob', 'b@x', '', '00000000000000000000000000000003', 1, 'r3', 1, 0, 0),
 (4, 'carol', 'c@x', '', '00000000000000000000000000000004', 1, 'r4', 0, 0, 0),
 (5, 'dave', 'd@x', '', '00000000000000000000000000000005', 5, 'r5', 1, 0, 0),
 (6, 'erin', 'e@x', '', '00000000000000000000000000000006', 6, 'r6', 1, 1, 0),
 (7, 'frank', 'f@x', '', '00000000000000000000000000000007', 1, 'r7', 1, 0, 1),
 (8, 'grace', 'g@x', '', '00000000000000000000000000000008', 1, 'r8', 1, 0, 0),
 (9, 'heidi', 'h@x', '', '00000000000000000000000000000009', 1, 'r9', 1, 0, 0);
`

// torrentSQL inserts torrent id with status, free and doubleup.
func torrentSQL(id, status, free int, doubleup bool) string {
	h := ih(id)
	du := 0
	if doubleup {
		du = 1
	}
	return fmt.Sprintf("INSERT INTO torrents (id, name, description, file_name, num_file, size, user_id, free, doubleup, status, info_hash, created_at, updated_at)"+
		" VALUES (%d, 't%d', '', 'f', 1, 1000, 1, %d, %d, %d, X'%x', UTC_TIMESTAMP(), UTC_TIMESTAMP());", id, id, free, du, status, h[:])
}

// torrents: 1 approved, 2 pending, 3 rejected, 4 postponed, 5 approved
// with 50 % freeleech and double upload, 6 and 8 approved, 7 of an
// unknown status, 9 approved.
var torrentsFixture = torrentSQL(1, 1, 0, false) + torrentSQL(2, 0, 0, false) + torrentSQL(3, 2, 0, false) +
	torrentSQL(4, 3, 0, false) + torrentSQL(5, 1, 50, true) + torrentSQL(6, 1, 0, false) +
	torrentSQL(7, 9, 0, false) + torrentSQL(8, 1, 0, false) + torrentSQL(9, 1, 0, false)

// bed is a UNIT3D site with Chihaya in front: its database, the backend,
// and the public and admin listeners on loopback.
type bed struct {
	t      testing.TB
	srv    *mariadbtest.Server
	dsn    string
	db     *sql.DB
	c      *unit3d.Conn
	tkr    *tracker.Tracker
	pub    *httptest.Server
	adm    *httptest.Server
	st     *stats.Stats
	mutate func(*config.Config) // of the tracker's configuration, or nil
	closed bool
}

// newBed starts a site with the fixture plus extra statements, and
// Chihaya with params (JSON object members, may be empty) on top of the
// test's defaults.
func newBed(t testing.TB, extra string, params string) *bed {
	t.Helper()
	return newBedOn(t, mariadbtest.Shared(t), extra, params)
}

func newBedOn(t testing.TB, srv *mariadbtest.Server, extra string, params string) *bed {
	t.Helper()
	return newBedConfig(t, srv, extra, params, nil)
}

// newBedConfig is newBedOn with the tracker's configuration changed by
// mutate (nil: the defaults, private).
func newBedConfig(t testing.TB, srv *mariadbtest.Server, extra string, params string, mutate func(*config.Config)) *bed {
	t.Helper()
	dsn := srv.Database(t, "testdata/unit3d-min.sql")
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	mc.MultiStatements = true
	mc.Loc = time.UTC
	mc.ParseTime = true
	mc.Params = map[string]string{"time_zone": "'+00:00'"}
	db, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(fixture + torrentsFixture + extra); err != nil {
		t.Fatalf("loading the fixture: %v", err)
	}
	b := &bed{t: t, srv: srv, dsn: dsn, db: db, mutate: mutate}
	b.open(params)
	return b
}

// open starts the backend and the listeners.
func (b *bed) open(params string) {
	t := b.t
	t.Helper()
	raw := fmt.Sprintf(`{"dsn": %q, "api_key": %q, "flush_interval": "1h"`, b.dsn, apiKey)
	if params != "" {
		raw += ", " + params
	}
	raw += "}"
	p, err := unit3d.ParseParams(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := unit3d.Open(ctx, p)
	if err != nil {
		t.Fatalf("opening the backend: %v", err)
	}
	cfg := config.Default()
	cfg.Private = true
	cfg.AdminAddr = "127.0.0.1:0"
	if b.mutate != nil {
		b.mutate(cfg)
	}
	pool, err := tracker.Open("memory", tracker.Options{Private: true})
	if err != nil {
		t.Fatal(err)
	}
	st := stats.New()
	b.c = c
	b.tkr = tracker.New(cfg, pool, c, st)
	c.FeedStats(st) // as the daemon does
	b.st = st
	b.pub = loopbackServer(t, chttp.NewServer(b.tkr, st).Handler())
	b.adm = loopbackServer(t, chttp.NewAdmin(b.tkr, st).Handler())
	b.closed = false
	t.Cleanup(func() {
		b.close()
		st.Close()
	})
}

// close stops the listeners and closes the tracker (the backend's final
// flush), once.
func (b *bed) close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.pub.Close()
	b.adm.Close()
	return b.tkr.Close()
}

func loopbackServer(t testing.TB, h nethttp.Handler) *httptest.Server {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener = l
	s.Start()
	return s
}

// query is an announce query string, its hashes fully percent-encoded.
func query(hash, peerID [20]byte, port int, up, down, left uint64, extra string) string {
	q := fmt.Sprintf("info_hash=%s&peer_id=%s&port=%d&uploaded=%d&downloaded=%d&left=%d&compact=1",
		escape(hash), escape(peerID), port, up, down, left)
	if extra != "" {
		q += "&" + extra
	}
	return q
}

func escape(b [20]byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "%%%02X", c)
	}
	return s.String()
}

// get sends a GET with headers (User-Agent qBittorrent unless given;
// "User-Agent": "" leaves it out, as net/http does) and returns the status, the
// Content-Type and the body.
func (b *bed) get(url string, headers map[string]string) (int, string, string) {
	b.t.Helper()
	req, err := nethttp.NewRequest(nethttp.MethodGet, url, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "qBittorrent/4.6.5")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return b.do(req)
}

func (b *bed) do(req *nethttp.Request) (int, string, string) {
	b.t.Helper()
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// announce sends user's announce and returns the body (status and type
// are checked: 200, application/octet-stream, as for every announce).
func (b *bed) announce(passkey, q string) string {
	b.t.Helper()
	return b.announceH(passkey, q, nil)
}

func (b *bed) announceH(passkey, q string, headers map[string]string) string {
	b.t.Helper()
	status, typ, body := b.get(b.pub.URL+"/announce/"+passkey+"?"+q, headers)
	if status != 200 || typ != "application/octet-stream" {
		b.t.Fatalf("announce: status %d, Content-Type %q, want 200 application/octet-stream (body %q)", status, typ, body)
	}
	return body
}

// api sends a site API request as UNIT3D's PHP client does: JSON body
// with Content-Type application/json for PUT and DELETE, Accept JSON for
// GET.
func (b *bed) api(method, path, body string) (int, string) {
	b.t.Helper()
	return b.apiKey(apiKey, method, path, body)
}

func (b *bed) apiKey(key, method, path, body string) (int, string) {
	b.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := nethttp.NewRequest(method, b.adm.URL+"/announce/"+key+"/"+path, r)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "GuzzleHttp/7")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	status, _, resp := b.do(req)
	return status, resp
}

// mustAPI is api, failing unless the answer is 200.
func (b *bed) mustAPI(method, path, body string) string {
	b.t.Helper()
	status, resp := b.api(method, path, body)
	if status != 200 {
		b.t.Fatalf("%s %s %s: status %d (%q), want 200", method, path, body, status, resp)
	}
	return resp
}

func (b *bed) flush() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.c.Flush(ctx); err != nil {
		b.t.Fatalf("flush: %v", err)
	}
}

// int runs a query returning one integer (NULL is -1).
func (b *bed) int(q string, args ...any) int64 {
	b.t.Helper()
	var v sql.NullInt64
	if err := b.db.QueryRow(q, args...).Scan(&v); err != nil {
		b.t.Fatalf("%s: %v", q, err)
	}
	if !v.Valid {
		return -1
	}
	return v.Int64
}

func (b *bed) exec(q string, args ...any) {
	b.t.Helper()
	if _, err := b.db.Exec(q, args...); err != nil {
		b.t.Fatalf("%s: %v", q, err)
	}
}

// failure is the exact failure reply of msg.
func failure(msg string) string {
	return fmt.Sprintf("d14:failure reason%d:%s8:intervali5400e12:min intervali5400ee", len(msg), msg)
}
