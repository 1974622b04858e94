//go:build e2e

package e2e

import (
	"bytes"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/internal/e2etest"
	"github.com/chihaya/chihaya/internal/mariadbtest"
	_ "github.com/go-sql-driver/mysql" // the site database
)

// privateCases run private mode, as a Gazelle site's tracker (see README
// "Replacing Ocelot"), each with its own MariaDB server, site database and
// tracker. Each user's torrent announces to form's URL with the user's
// passkey; seeder and leecher are the clients.
var privateCases = []privateCase{
	{"private", httpURL, aria2, transmission, false},
	// aria2 1.36 and Transmission 3.00 send no BEP 41 URL data, so a
	// udp:// passkey URL works with neither (and aria2 turns its UDP
	// trackers off with DHT, for private torrents).
	{"private over udp", udpURL, libtorrent, libtorrent, true},
}

// A privateCase is a private-mode run.
type privateCase struct {
	name            string
	form            urlForm
	seeder, leecher clientKind
	// exactCredit: the clients report exactly the payload they moved
	// (libtorrent counts payload bytes only), so the credit must be the
	// file's size, not within the bounds of site.credited.
	exactCredit bool
}

// The site's users and torrent.
const (
	seederUID  = 7
	leecherUID = 8
	torrentID  = 42 // torrents.ID
)

// site is a private case's Gazelle site: its database and secrets.
type site struct {
	db                          *sql.DB
	secret                      string // tracker_secret (Gazelle's TRACKER_SECRET)
	seederPK, leecherPK, nobody string // users_main.torrent_pass; nobody's is unknown
	size                        int64  // the payload's, once known
	exactCredit                 bool   // see privateCase
}

// update is the site's update call on the admin listener; it returns an
// error unless the tracker answers "success".
func (st *site) update(tr *e2etest.Tracker, query string) error {
	body, err := e2etest.Get("http://" + tr.Admin + "/" + st.secret + "/update?" + query)
	if err == nil && body != "success" {
		err = fmt.Errorf("update?%s: %q", query, body)
	}
	return err
}

// stmt is an SQL statement and its arguments.
type stmt struct {
	query string
	args  []any
}

// exec runs stmts one after the other, as the site's code would.
func (st *site) exec(stmts ...stmt) error {
	for _, x := range stmts {
		if _, err := st.db.Exec(x.query, x.args...); err != nil {
			return fmt.Errorf("%s: %w", x.query, err)
		}
	}
	return nil
}

// testPrivate runs a private case. A throw-away MariaDB holds the site
// (backend/mysql/testdata/gazelle-min.sql, the OPS "leech_stats" schema).
// The seeder's user is in the database when the tracker starts (loaded at
// start); the torrent and the leecher's user are added afterwards as
// Gazelle adds them: database rows, then the site update (add_torrent,
// add_user) on the admin listener. Each client's torrent announces to its
// own user's passkey URL (BEP 27 private torrents, one info_hash). aria2
// seeds, transmission-cli leeches (it sends `completed`, which makes the
// snatch); then the database, flushed every second, must show the credit,
// the snatch and the peers, and again after the tracker has stopped (its
// last flush must not count anything twice). An unknown passkey gets
// Ocelot's "Passkey not found".
func testPrivate(t *testing.T, c privateCase) {
	st := &site{secret: e2etest.RandomHex(16), seederPK: e2etest.RandomHex(16),
		leecherPK: e2etest.RandomHex(16), nobody: e2etest.RandomHex(16), exactCredit: c.exactCredit}
	srv := mariadbtest.StartServer(t)
	t.Logf("[%v] mariadbd on %s (socket %s)", since(), srv.Addr, srv.Socket)
	dsn := srv.Database(t, filepath.Join("..", "backend", "mysql", "testdata", "gazelle-min.sql"))
	var err error
	if st.db, err = sql.Open("mysql", dsn); err != nil {
		t.Fatal(err)
	}
	defer st.db.Close()
	if !check(t, "site database (gazelle-min.sql, strict sql_mode, the seeder's user)", func(t *testing.T) {
		var version, mode string
		if err := st.db.QueryRow("SELECT VERSION(), @@GLOBAL.sql_mode").Scan(&version, &mode); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(mode, "STRICT_ALL_TABLES") {
			t.Fatalf("sql_mode %q is not strict", mode)
		}
		if err := st.exec(
			stmt{"INSERT INTO users_main (ID, torrent_pass, Enabled) VALUES (?, ?, '1')", []any{seederUID, st.seederPK}},
			stmt{"INSERT INTO users_leech_stats (UserID) VALUES (?)", []any{seederUID}},
		); err != nil {
			t.Fatalf("the seeder's user: %v", err)
		}
		t.Logf("MariaDB %s", version)
	}) {
		return
	}

	dir := filepath.Join(work, strings.ReplaceAll(c.name, " ", "-"))
	tr := e2etest.StartTracker(t, trackerBinary(t), filepath.Join(dir, "tracker"), map[string]any{
		"private_tracker": true,
		"tracker_secret":  st.secret,
		"report_secret":   e2etest.RandomHex(16),
		"backend": map[string]any{"driver": "mysql", "params": map[string]any{
			"dsn":            dsn,
			"schema":         "leech_stats",
			"flush_interval": "1s",
		}},
	})
	t.Logf("[%v] tracker pid %d on %s (admin %s)", since(), tr.PID(), tr.Addr, tr.Admin)

	transferred := privateTransfer(t, st, &swarm{tr: tr, dir: dir, scrape: tr.ScrapeURL(st.seederPK), form: c.form}, c)
	// The deliberate unknown passkey is the one request allowed to fail.
	stopTracker(t, tr, c.form.unknownPasskey(st.nobody))
	if transferred {
		st.dbChecks(t, "after the tracker stopped", 0)
	}
}

// privateTransfer is a private case up to its first database checks; it
// reports whether the transfer got that far.
func privateTransfer(t *testing.T, st *site, s *swarm, c privateCase) bool {
	announce := c.form.url
	s.needUDP(t)
	s.files(t)
	st.size = int64(len(s.payload))
	seederTorrent, leecherTorrent := s.path("seeder.torrent"), s.path("leecher.torrent")
	if !check(t, "seeder's and leecher's torrents: private, own passkey URLs, one info_hash", func(t *testing.T) {
		// Same file, same piece length (-l 18: 256 KiB), both private: the
		// same info dict, so one info_hash; only the announce URLs differ.
		var lhash string
		var err error
		if s.hash, err = e2etest.MakeTorrent(s.payloadPath, seederTorrent, announce(s.tr, st.seederPK), "-p", "-l", "18"); err != nil {
			t.Fatal(err)
		}
		if lhash, err = e2etest.MakeTorrent(s.payloadPath, leecherTorrent, announce(s.tr, st.leecherPK), "-p", "-l", "18"); err != nil {
			t.Fatal(err)
		}
		if s.hash != lhash {
			t.Fatalf("info_hash: seeder's %s, leecher's %s", s.hash, lhash)
		}
		for f, pk := range map[string]string{seederTorrent: st.seederPK, leecherTorrent: st.leecherPK} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("7:privatei1e")) || !bytes.Contains(b, []byte(pk+"/announce")) {
				t.Fatalf("%s: not private, or not announcing to its passkey %s", f, pk)
			}
		}
		t.Logf("[%v] %d bytes, info_hash %s, %s port %d, %s port %d",
			since(), st.size, s.hash, c.seeder.name, s.seedPort, c.leecher.name, s.leechPort)
	}) {
		return false
	}

	if !check(t, "site adds the torrent and the leecher (rows, then /update add_torrent and add_user: success)", func(t *testing.T) {
		// The upload, as Gazelle does it: the rows, then the tracker is told.
		if err := st.exec(
			stmt{"INSERT INTO torrents (ID, info_hash, FreeTorrent, Size) VALUES (?, UNHEX(?), '0', ?)", []any{torrentID, s.hash, st.size}},
			stmt{"INSERT INTO torrents_leech_stats (TorrentID) VALUES (?)", []any{torrentID}},
			stmt{"INSERT INTO users_main (ID, torrent_pass, Enabled) VALUES (?, ?, '1')", []any{leecherUID, st.leecherPK}},
			stmt{"INSERT INTO users_leech_stats (UserID) VALUES (?)", []any{leecherUID}},
		); err != nil {
			t.Fatal(err)
		}
		ih, err := hex.DecodeString(s.hash)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			fmt.Sprintf("action=add_torrent&id=%d&info_hash=%s&freetorrent=0", torrentID, url.QueryEscape(string(ih))),
			fmt.Sprintf("action=add_user&passkey=%s&id=%d&visible=1", st.leecherPK, leecherUID),
		} {
			if err := st.update(s.tr, q); err != nil {
				t.Fatalf("%v\n%s", err, e2etest.Tail(s.tr.Log, 5))
			}
		}
	}) {
		return false
	}

	check(t, `an unknown passkey gets "Passkey not found"`, func(t *testing.T) {
		got, err := e2etest.Announce(announce(s.tr, st.nobody), s.hash)
		if err != nil || got != "failure reason: Passkey not found" {
			t.Fatalf("got %q, %v", got, err)
		}
	})

	if !s.share(t, c.seeder, c.leecher, seederTorrent, leecherTorrent) {
		return false
	}

	// Both stop: the seeder sends `stopped` with its final counters; the
	// leecher's `completed` already carried its download (Transmission may
	// or may not send `stopped`).
	check(t, "clients stop (the leecher sent completed; the seeder exits as SIGINT ends it and sends stopped; the leecher ends on SIGINT)", func(t *testing.T) {
		if !s.sawEvent(s.leechPort, "completed") {
			t.Errorf("%s sent no event=completed from port %d", c.leecher.name, s.leechPort)
		}
		if e := s.seeder.Stop(syscall.SIGINT); !c.seeder.endedOnSIGINT(e) {
			t.Errorf("%s seeder on SIGINT: %v\n%s", c.seeder.name, e, e2etest.Tail(s.seeder.Log, 25))
		}
		if c.seeder.sendsStopped && !s.sawEvent(s.seedPort, "stopped") {
			t.Errorf("%s sent no event=stopped from port %d on SIGINT", c.seeder.name, s.seedPort)
		}
		if e := s.leecher.Stop(syscall.SIGINT); !c.leecher.endedOnSIGINT(e) {
			t.Errorf("%s leecher on SIGINT: %v\n%s", c.leecher.name, e, e2etest.Tail(s.leecher.Log, 25))
		}
	})

	// A flush or more (every second): first look after 3 s, then poll.
	time.Sleep(3 * time.Second)
	st.dbChecks(t, "after the flushes", 10*time.Second)
	return true
}

// counters are what the transfer must leave in the site's database.
type counters struct {
	seederUp, seederDown, leecherUp, leecherDown sql.NullInt64 // users_leech_stats
	snatched                                     sql.NullInt64 // torrents_leech_stats.Snatched
	snatchRows, allSnatchRows                    int64         // xbt_snatched: the leecher's from 127.0.0.1; all
	peerUsers                                    int64         // users with a row in xbt_files_users
}

func (st *site) counters() (counters, error) {
	var c counters
	err := st.db.QueryRow(`SELECT
		(SELECT Uploaded FROM users_leech_stats WHERE UserID = ?),
		(SELECT Downloaded FROM users_leech_stats WHERE UserID = ?),
		(SELECT Uploaded FROM users_leech_stats WHERE UserID = ?),
		(SELECT Downloaded FROM users_leech_stats WHERE UserID = ?),
		(SELECT Snatched FROM torrents_leech_stats WHERE TorrentID = ?),
		(SELECT COUNT(*) FROM xbt_snatched WHERE uid = ? AND fid = ? AND IP = '127.0.0.1'),
		(SELECT COUNT(*) FROM xbt_snatched),
		(SELECT COUNT(DISTINCT uid) FROM xbt_files_users WHERE fid = ? AND uid IN (?, ?))`,
		seederUID, seederUID, leecherUID, leecherUID, torrentID, leecherUID, torrentID, torrentID, seederUID, leecherUID,
	).Scan(&c.seederUp, &c.seederDown, &c.leecherUp, &c.leecherDown, &c.snatched, &c.snatchRows, &c.allSnatchRows, &c.peerUsers)
	if err == nil && !(c.seederUp.Valid && c.seederDown.Valid && c.leecherUp.Valid && c.leecherDown.Valid && c.snatched.Valid) {
		err = fmt.Errorf("a users_leech_stats or torrents_leech_stats row is missing: %+v", c)
	}
	return c, err
}

// The credit is what the clients themselves reported (uploaded and
// downloaded in their announces), not what the tracker measured. On
// loopback with one seeder and one leecher both should be the file size;
// the bounds leave slack: at least 90% (a client may count only the payload
// of pieces it has verified, or send its last announce with a block still
// in flight) and at most 150% (a tracker that credited an announce twice
// would double it; Transmission counts re-requested blocks too, but there
// are few on loopback).
func (st *site) credited(n int64) bool {
	if st.exactCredit {
		return n == st.size
	}
	return n >= st.size*9/10 && n <= st.size*3/2
}

// creditBounds describes what credited accepts, for check names.
func (st *site) creditBounds() string {
	if st.exactCredit {
		return "the file size"
	}
	return "within 90-150% of the file size"
}

func (st *site) seederCredited(c counters) bool {
	return st.credited(c.seederUp.Int64) && c.seederDown.Int64 == 0
}
func (st *site) leecherCredited(c counters) bool { return st.credited(c.leecherDown.Int64) }
func snatchedOnce(c counters) bool {
	return c.snatched.Int64 == 1 && c.snatchRows == 1 && c.allSnatchRows == 1
}

// dbChecks polls the database (the tracker flushes every second) until the
// counters are what the transfer must have left, or for at most within;
// then it checks each fact.
func (st *site) dbChecks(t *testing.T, when string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	c, err := st.counters()
	for (err != nil || !(st.seederCredited(c) && st.leecherCredited(c) && snatchedOnce(c) && c.peerUsers == 2)) &&
		time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		c, err = st.counters()
	}
	prefix := "database " + when + ": "
	if err != nil {
		check(t, prefix+"counters readable", func(t *testing.T) { t.Fatal(err) })
		return
	}
	check(t, prefix+"seeder's users_leech_stats Uploaded "+st.creditBounds()+", Downloaded 0", func(t *testing.T) {
		if !st.seederCredited(c) {
			t.Fatalf("Uploaded %d, Downloaded %d; want Uploaded %s (%d), Downloaded 0",
				c.seederUp.Int64, c.seederDown.Int64, st.creditBounds(), st.size)
		}
		t.Logf("Uploaded %d (file %d), Downloaded %d", c.seederUp.Int64, st.size, c.seederDown.Int64)
	})
	check(t, prefix+"leecher's users_leech_stats Downloaded "+st.creditBounds(), func(t *testing.T) {
		if !st.leecherCredited(c) {
			t.Fatalf("Downloaded %d, Uploaded %d; want Downloaded %s (%d)",
				c.leecherDown.Int64, c.leecherUp.Int64, st.creditBounds(), st.size)
		}
		t.Logf("Downloaded %d (file %d), Uploaded %d", c.leecherDown.Int64, st.size, c.leecherUp.Int64)
	})
	check(t, prefix+"torrents_leech_stats.Snatched 1, one xbt_snatched row (leecher, IP 127.0.0.1)", func(t *testing.T) {
		if !snatchedOnce(c) {
			t.Fatalf("Snatched %d; xbt_snatched rows for the leecher from 127.0.0.1: %d, in all: %d\n%s",
				c.snatched.Int64, c.snatchRows, c.allSnatchRows, st.dump("SELECT * FROM xbt_snatched"))
		}
	})
	check(t, prefix+"xbt_files_users has both users' peers", func(t *testing.T) {
		if c.peerUsers != 2 {
			t.Fatalf("%d users\n%s", c.peerUsers, st.dump("SELECT uid, fid, active, completed, uploaded, downloaded, remaining, ip FROM xbt_files_users"))
		}
	})
}

// dump returns a query's rows, tab-separated, for a failure message.
func (st *site) dump(query string) string {
	rows, err := st.db.Query(query)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := []string{strings.Join(cols, "\t")}
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err.Error()
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = string(v)
		}
		out = append(out, strings.Join(row, "\t"))
	}
	return strings.Join(out, "\n")
}
