//go:build e2e

package e2e

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/internal/e2etest"
	"github.com/chihaya/chihaya/internal/mariadbtest"
)

// The UNIT3D site of TestUNIT3D: its users and torrent.
const (
	unit3dSeeder  = 7
	unit3dLeecher = 8
	unit3dTorrent = 42
)

// TestUNIT3D runs the daemon as a UNIT3D site's tracker (backend unit3d,
// see docs/replacing-unit3d.md): a throw-away MariaDB holds the site
// (backend/unit3d/testdata/unit3d-min.sql, strict sql_mode); the torrent
// is uploaded and approved through the site's API (PUT torrents on the
// admin listener, as UNIT3D's Unit3dAnnounce service sends it); two
// libtorrent clients (which report payload bytes exactly) share it through
// their users' passkey URLs, /announce/<passkey>; the database must then
// credit exactly the file's size in users and history, count the
// completion once, and be unchanged by the final flush of SIGTERM.
func TestUNIT3D(t *testing.T) {
	e2etest.Require(t, e2etest.Tools...)
	seederPK, leecherPK, key := e2etest.RandomHex(16), e2etest.RandomHex(16), e2etest.RandomHex(20)
	srv := mariadbtest.StartServer(t)
	dsn := srv.Database(t, filepath.Join("..", "backend", "unit3d", "testdata", "unit3d-min.sql"))
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !check(t, "unit3d: site database (unit3d-min.sql, strict sql_mode, a group and three users)", func(t *testing.T) {
		for _, q := range []string{
			"INSERT INTO `groups` (id, slug) VALUES (1, 'user')",
			"INSERT INTO users (id, username, email, password, passkey, group_id, rsskey) VALUES (1, 'System', 's', '', 'system', 1, 'r1')",
			fmt.Sprintf("INSERT INTO users (id, username, email, password, passkey, group_id, rsskey) VALUES (%d, 'seeder', 'a', '', '%s', 1, 'r2')", unit3dSeeder, seederPK),
			fmt.Sprintf("INSERT INTO users (id, username, email, password, passkey, group_id, rsskey) VALUES (%d, 'leecher', 'b', '', '%s', 1, 'r3')", unit3dLeecher, leecherPK),
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}) {
		return
	}
	dir := filepath.Join(work, "unit3d")
	tr := e2etest.StartTracker(t, trackerBinary(t), filepath.Join(dir, "tracker"), map[string]any{
		"private_tracker": true,
		"udp_addr":        "",
		"backend": map[string]any{"driver": "unit3d", "params": map[string]any{
			"dsn":                   dsn,
			"api_key":               key,
			"flush_interval":        "1s",
			"announce_min":          "2s",
			"announce_min_enforced": "1s",
			"announce_max":          "3s",
			"active_peer_ttl":       "30s",
		}},
	})
	t.Logf("[%v] tracker pid %d on %s (admin %s)", since(), tr.PID(), tr.Addr, tr.Admin)
	api := func(method, path, body string) (int, string, error) {
		req, err := http.NewRequest(method, "http://"+tr.Admin+"/announce/"+key+"/"+path, strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	announce := func(pk string) string { return "http://" + tr.Addr + "/announce/" + pk }

	s := &swarm{tr: tr, dir: dir}
	s.files(t)
	size := int64(len(s.payload))
	seedTorrent, leechTorrent := s.path("seeder.torrent"), s.path("leecher.torrent")
	if !check(t, "unit3d: torrents with /announce/<passkey> URLs; the site uploads and approves it (PUT torrents: 200)", func(t *testing.T) {
		var lhash string
		if s.hash, err = e2etest.MakeTorrent(s.payloadPath, seedTorrent, announce(seederPK), "-p", "-l", "18"); err != nil {
			t.Fatal(err)
		}
		if lhash, err = e2etest.MakeTorrent(s.payloadPath, leechTorrent, announce(leecherPK), "-p", "-l", "18"); err != nil || lhash != s.hash {
			t.Fatalf("leecher's torrent: %s, %v", lhash, err)
		}
		if _, err := db.Exec("INSERT INTO torrents (id, name, description, file_name, num_file, size, user_id, status, info_hash) VALUES (?, 'e2e', '', 'payload.bin', 1, ?, 1, 0, UNHEX(?))",
			unit3dTorrent, size, s.hash); err != nil {
			t.Fatal(err)
		}
		for _, status := range []int{0, 1} { // the upload, then the approval
			body := fmt.Sprintf(`{"id":%d,"status":%d,"info_hash":"%s","is_deleted":false,"seeders":0,"leechers":0,"times_completed":0,"download_factor":100,"upload_factor":100}`,
				unit3dTorrent, status, s.hash)
			if code, resp, err := api("PUT", "torrents", body); err != nil || code != 200 {
				t.Fatalf("PUT torrents: %d %q %v", code, resp, err)
			}
		}
	}) {
		return
	}
	check(t, `unit3d: /announce/health/ping answers PONG; an unknown passkey gets "Passkey does not exist. ..."`, func(t *testing.T) {
		if body, err := e2etest.Get("http://" + tr.Addr + "/announce/health/ping"); err != nil || body != "PONG" {
			t.Errorf("ping: %q %v", body, err)
		}
		var q strings.Builder
		q.WriteString("?info_hash=")
		for i := 0; i < len(s.hash); i += 2 {
			q.WriteString("%" + s.hash[i:i+2]) // every byte escaped: '+' would be 0x2B
		}
		q.WriteString("&peer_id=-E2E001-000000000000&port=6999&uploaded=0&downloaded=0&left=1&event=started&compact=1")
		got, err := e2etest.Get(announce(e2etest.RandomHex(16)) + q.String())
		if want := "d14:failure reason61:Passkey does not exist. Please re-download the .torrent file.8:intervali5400e12:min intervali5400ee"; err != nil || got != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	})

	peers := func(want string) func(t *testing.T) {
		return func(t *testing.T) {
			deadline := time.Now().Add(20 * time.Second)
			var body string
			for time.Now().Before(deadline) {
				_, body, _ = api("GET", fmt.Sprintf("torrents/%d", unit3dTorrent), "")
				if strings.Contains(body, want) {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
			t.Fatalf("GET torrents/%d: %s, want %s\n%s", unit3dTorrent, body, want, s.logs())
		}
	}
	s.seeder = libtorrent.run(t, s, "seed", seedTorrent, s.seedPort)
	if !check(t, "unit3d: seeder registered (GET torrents/{id}: seeders 1)", peers(`"seeders":1,"leechers":0`)) {
		return
	}
	s.leecher = libtorrent.run(t, s, "leech", leechTorrent, s.leechPort)
	if !check(t, "unit3d: libtorrent downloaded a byte-identical file", func(t *testing.T) {
		if !e2etest.WaitIdentical(s.payload, s.path("leech/payload.bin"), transferWait, s.leecher) {
			t.Fatalf("no byte-identical payload.bin within %v\n%s", transferWait, s.logs())
		}
	}) {
		return
	}
	check(t, "unit3d: the site's view after the transfer: 2 seeders, times_completed 1", peers(`"seeders":2,"leechers":0,"times_completed":1`))
	check(t, "unit3d: clients stop on SIGINT (sending stopped)", func(t *testing.T) {
		for _, c := range []*struct {
			name string
			e    e2etest.Exit
		}{{"seeder", s.seeder.Stop(syscall.SIGINT)}, {"leecher", s.leecher.Stop(syscall.SIGINT)}} {
			if !libtorrent.endedOnSIGINT(c.e) {
				t.Errorf("%s: %v", c.name, c.e)
			}
		}
	})

	type counts struct{ seederUp, seederDown, leecherDown, histUp, histActualUp, histDown, completed, active int64 }
	read := func() (c counts, err error) {
		err = db.QueryRow(`SELECT
			(SELECT uploaded FROM users WHERE id = ?), (SELECT downloaded FROM users WHERE id = ?),
			(SELECT downloaded FROM users WHERE id = ?),
			(SELECT uploaded FROM history WHERE user_id = ? AND torrent_id = ?),
			(SELECT actual_uploaded FROM history WHERE user_id = ? AND torrent_id = ?),
			(SELECT downloaded FROM history WHERE user_id = ? AND torrent_id = ?),
			(SELECT times_completed FROM torrents WHERE id = ?),
			(SELECT COUNT(*) FROM peers WHERE torrent_id = ? AND active = 1)`,
			unit3dSeeder, unit3dSeeder, unit3dLeecher, unit3dSeeder, unit3dTorrent, unit3dSeeder, unit3dTorrent,
			unit3dLeecher, unit3dTorrent, unit3dTorrent, unit3dTorrent,
		).Scan(&c.seederUp, &c.seederDown, &c.leecherDown, &c.histUp, &c.histActualUp, &c.histDown, &c.completed, &c.active)
		return c, err
	}
	want := counts{seederUp: size, leecherDown: size, histUp: size, histActualUp: size, histDown: size, completed: 1}
	dbCheck := func(when string, within time.Duration) {
		check(t, "unit3d: database "+when+": users and history credit exactly the file size, times_completed 1, no active peer", func(t *testing.T) {
			deadline := time.Now().Add(within)
			c, err := read()
			for (err != nil || c != want) && time.Now().Before(deadline) {
				time.Sleep(500 * time.Millisecond)
				c, err = read()
			}
			if err != nil || c != want {
				t.Fatalf("got %+v (%v), want %+v", c, err, want)
			}
			t.Logf("%+v (file %d bytes)", c, size)
		})
	}
	dbCheck("after the flushes", 15*time.Second)

	check(t, "unit3d: tracker shuts down cleanly on SIGTERM, after its last flush (chihaya_flush emptied)", func(t *testing.T) {
		if err := tr.Stop(); err != nil {
			t.Fatalf("%v\n%s", err, e2etest.Tail(tr.Log, 10))
		}
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM chihaya_flush").Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d chihaya_flush rows (%v)", n, err)
		}
	})
	dbCheck("after the tracker stopped", 0)
	check(t, "unit3d: every announce was answered without a failure but the unknown passkey's; no error in the log", func(t *testing.T) {
		b, err := os.ReadFile(tr.Log)
		if err != nil {
			t.Fatal(err)
		}
		line := regexp.MustCompile(`\] GET /announce/([0-9a-f]{32})\?\S* from \S+: (.*)$`)
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if regexp.MustCompile(`^[EF]\d|panic`).MatchString(l) {
				t.Errorf("log: %s", l)
			}
			m := line.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			n++
			if m[2] != "<nil>" && (m[1] == seederPK || m[1] == leecherPK) {
				t.Errorf("announce failed: %s", l)
			}
		}
		if n < 4 {
			t.Errorf("%d announces in the log", n)
		}
		t.Logf("%d announces", n)
	})
}
