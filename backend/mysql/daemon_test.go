package mysql

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya"
	"github.com/chihaya/chihaya/config"
)

// The whole daemon as a Gazelle tracker: announces over HTTP with a
// passkey, the site's updates and reports on the admin listener, credit
// in the database once the daemon has shut down.
func TestDaemonWithGazelle(t *testing.T) {
	const secret, reportKey = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	s := newSite(t, SchemaLeechStats)
	uid := s.addUser(1)
	s.addTorrent(1, "0")

	cfg := config.Default()
	cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Private, cfg.TrackerSecret, cfg.ReportSecret = true, secret, reportKey
	cfg.Backend.Name = "mysql"
	cfg.Backend.Params, _ = json.Marshal(map[string]any{"dsn": s.dsn, "flush_interval": "1h"})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- chihaya.Run(ctx, cfg, func(a chihaya.Addrs) { ready <- [2]string{a.Public.String(), a.Admin.String()} })
	}()
	var public, admin string
	select {
	case addrs := <-ready:
		public, admin = addrs[0], addrs[1]
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not start")
	}
	get := func(url string) string {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	p := peerID(1)
	ann := func(pk, query string) string {
		return get("http://" + public + "/" + pk + "/announce?info_hash=" + escape(hash(1)) +
			"&peer_id=" + escape(p) + "&port=6881&compact=1&" + query)
	}
	if body := ann(passkey(1), "uploaded=0&downloaded=0&left=100&event=started"); strings.Contains(body, "failure") {
		t.Fatalf("announce: %s", body)
	}
	ann(passkey(1), "uploaded=1000&downloaded=200&left=100")
	if body := ann(passkey(9), "uploaded=0&downloaded=0&left=100"); !strings.Contains(body, "Passkey not found") {
		t.Errorf("unknown passkey: %s", body)
	}
	if body := get("http://" + admin + "/" + secret + "/update?action=update_torrent&info_hash=" + escape(hash(1)) + "&freetorrent=1"); body != "success" {
		t.Fatalf("update: %q", body)
	}
	ann(passkey(1), "uploaded=1500&downloaded=700&left=0&event=completed")
	if body := get("http://" + admin + "/" + reportKey + "/report?get=user&key=" + passkey(1)); !strings.Contains(body, `"seeding":1`) {
		t.Errorf("user report: %s", body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if up, down := s.credit(uid); up != 1500 || down != 200 {
		t.Errorf("credited %d/%d, want 1500/200 (the last 500 down was freeleech)", up, down)
	}
	if n := s.int("SELECT Snatched FROM torrents_leech_stats"); n != 1 {
		t.Errorf("Snatched %d", n)
	}
}
