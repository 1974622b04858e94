package chihaya

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	trackerudp "github.com/anacrolix/torrent/tracker/udp"
	"github.com/anacrolix/torrent/types/infohash"
)

// The torrents of the list tests: announceTarget's "aaaa..." and "bbbb...".
const (
	hexA = "6161616161616161616161616161616161616161"
	hexB = "6262626262626262626262626262626262626262"
)

// notAuthorized is the failure reason of a torrent the list refuses.
const notAuthorized = "Requested download is not authorized for use with this tracker."

// listAnnounce announces peer (one character) as a leecher of the torrent
// whose info_hash is 20 times the byte c, and returns the answer.
func listAnnounce(t *testing.T, d *daemon, c byte, peer string) map[string]any {
	t.Helper()
	return decodeBody(t, rawGet(t, d.public, fmt.Sprintf("GET /announce?info_hash=%s&peer_id=-TR4050-00000000000%s&port=7001&uploaded=0&downloaded=0&left=5 HTTP/1.0\r\n\r\n",
		strings.Repeat(string(c), 20), peer)))
}

// adminDo sends an admin request with the bearer token and returns the
// whole answer.
func adminDo(t *testing.T, d *daemon, method, path, token string) string {
	t.Helper()
	return rawGet(t, d.admin, method+" "+path+" HTTP/1.0\r\nAuthorization: Bearer "+token+"\r\n\r\n")
}

// TestTorrentList runs the built daemon with an allow list: a torrent not
// on it is refused over HTTP and UDP with opentracker's words; editing
// the file (noticed by its mtime) or SIGHUP reloads it, a torrent taken
// off has its swarm dropped, a bad line is logged with its number and the
// list stays; the admin API (behind admin_token) reads and edits it, and
// the file it rewrites survives a restart.
func TestTorrentList(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "torrents")
	write := func(s string) {
		t.Helper()
		// A new mtime even within the file system's time resolution.
		if err := os.WriteFile(list, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Duration(len(s)) * time.Second)
		os.Chtimes(list, later, later)
	}
	write("# allowed torrents\n" + hexA + "\n")
	const token = "s3cret-admin-token"
	cfg := `{"addr": "127.0.0.1:0", "admin_addr": "127.0.0.1:0", "udp_addr": "127.0.0.1:0", "admin_token": "` + token + `",
		"torrent_list": {"mode": "allow", "file": "` + list + `"}}`
	d := startDaemon(t, cfg)
	d.waitLog(t, "torrent_list: 1 torrents in "+list+" (allow list)", 1)

	if m := listAnnounce(t, d, 'a', "1"); m["incomplete"] != int64(1) {
		t.Errorf("listed torrent: %v", m)
	}
	if m := listAnnounce(t, d, 'b', "1"); m["failure reason"] != notAuthorized {
		t.Errorf("unlisted torrent: %v", m)
	}
	if m := decodeBody(t, rawGet(t, d.public, "GET /scrape?info_hash=bbbbbbbbbbbbbbbbbbbb HTTP/1.0\r\n\r\n")); m["failure reason"] != notAuthorized {
		t.Errorf("scrape of an unlisted torrent: %v", m)
	}
	cc := udpClient(t, "udp4", d.udpAddr(t))
	udpRefused := func(hash string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req := trackerudp.AnnounceRequest{InfoHash: infohash.T([]byte(hash)), Left: 5, NumWant: -1, Port: 7002}
		copy(req.PeerId[:], "-TR4050-udp000000001")
		if _, _, err := cc.Announce(ctx, req, trackerudp.Options{}); err == nil || !strings.Contains(err.Error(), notAuthorized) {
			t.Errorf("UDP announce of %q: %v, want %q", hash, err, notAuthorized)
		}
	}
	udpRefused("bbbbbbbbbbbbbbbbbbbb")

	// Both listed, by editing the file: the daemon notices within seconds.
	write("# allowed torrents\n" + hexA + "\n" + hexB + "\n")
	d.waitLog(t, "torrent_list: reloaded "+list+": 2 torrents", 1)
	if m := listAnnounce(t, d, 'b', "1"); m["incomplete"] != int64(1) {
		t.Errorf("torrent B once listed: %v", m)
	}

	// A bad line: logged with its number, and the list stays.
	write(hexA + "\n" + hexB + "\nnot-a-hash\n")
	d.waitLog(t, list+": line 3: \"not-a-hash\": an info_hash is 40 hex digits; the list read last stays", 1)
	if m := listAnnounce(t, d, 'b', "2"); m["incomplete"] != int64(2) {
		t.Errorf("after a bad file, torrent B: %v", m)
	}

	// B off the list, by SIGHUP: its swarm goes, A's stays.
	write(hexA + "\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "torrent_list: dropped the swarms of 1 refused torrents (2 peers)", 1)
	if m := listAnnounce(t, d, 'b', "3"); m["failure reason"] != notAuthorized {
		t.Errorf("torrent B taken off: %v", m)
	}
	if m := listAnnounce(t, d, 'a', "2"); m["incomplete"] != int64(2) {
		t.Errorf("torrent A after the reload: %v (its swarm must stay)", m)
	}

	// The admin API, behind admin_token like every admin route.
	if resp := rawGet(t, d.admin, "GET /torrents/"+hexA+" HTTP/1.0\r\n\r\n"); !strings.Contains(resp, " 401 ") {
		t.Errorf("GET /torrents without the token: %q", resp)
	}
	if resp := rawGet(t, d.admin, "PUT /torrents/"+hexB+"/listed HTTP/1.0\r\n\r\n"); !strings.Contains(resp, " 401 ") {
		t.Errorf("PUT without the token: %q", resp)
	}
	if resp := adminDo(t, d, "GET", "/torrents/"+hexA, token); !strings.Contains(resp, `{"info_hash":"`+hexA+`","complete":0,"incomplete":2,"downloaded":0,"listed":true,"allowed":true}`) {
		t.Errorf("GET /torrents/A: %q", resp)
	}
	if resp := adminDo(t, d, "GET", "/torrents/xyz", token); !strings.Contains(resp, " 400 ") {
		t.Errorf("GET /torrents/xyz: %q", resp)
	}
	if resp := adminDo(t, d, "PUT", "/torrents/"+hexB+"/listed", token); !strings.Contains(resp, `{"info_hash":"`+hexB+`","listed":true,"changed":true}`) {
		t.Errorf("PUT B: %q", resp)
	}
	if m := listAnnounce(t, d, 'b', "4"); m["incomplete"] != int64(1) {
		t.Errorf("torrent B listed by the API: %v", m)
	}
	if resp := adminDo(t, d, "DELETE", "/torrents/"+hexA+"/listed", token); !strings.Contains(resp, `"changed":true`) {
		t.Errorf("DELETE A: %q", resp)
	}
	if m := listAnnounce(t, d, 'a', "5"); m["failure reason"] != notAuthorized {
		t.Errorf("torrent A taken off by the API: %v", m)
	}
	if resp := adminDo(t, d, "GET", "/torrents/"+hexA, token); !strings.Contains(resp, `"incomplete":0,"downloaded":0,"listed":false,"allowed":false}`) {
		t.Errorf("GET /torrents/A once taken off: %q (its swarm must be gone)", resp)
	}
	if b, _ := os.ReadFile(list); string(b) != hexB+"\n" {
		t.Errorf("the list's file after the API's changes: %q", b)
	}
	d.shutdown(t, syscall.SIGTERM)

	// The API's changes survive a restart: they are in the file.
	d = startDaemon(t, cfg)
	if m := listAnnounce(t, d, 'a', "1"); m["failure reason"] != notAuthorized {
		t.Errorf("after a restart, torrent A: %v", m)
	}
	if m := listAnnounce(t, d, 'b', "1"); m["incomplete"] != int64(1) {
		t.Errorf("after a restart, torrent B: %v", m)
	}
	d.shutdown(t, syscall.SIGTERM)

	// Without a list the API says so; a list that does not load stops the
	// start.
	d = startDaemon(t, `{"addr": "127.0.0.1:0", "admin_addr": "127.0.0.1:0", "udp_addr": ""}`)
	if resp := adminDo(t, d, "PUT", "/torrents/"+hexB+"/listed", ""); !strings.Contains(resp, " 409 ") || !strings.Contains(resp, "no torrent_list is configured") {
		t.Errorf("PUT without a list: %q", resp)
	}
	d.shutdown(t, syscall.SIGTERM)
	write("bad\n")
	p := startProcess(t, daemonCmd(t, cfg))
	if err := p.wait(t); err == nil || !strings.Contains(p.log.String(), list+": line 1: ") {
		t.Errorf("a bad list at start: exit %v, log:\n%s", err, p.log.String())
	}
}

// TestClientList: a deny list refuses its clients with "Your client is
// banned", an allow list the others with "Your client is not on the
// whitelist"; SIGHUP applies a changed list.
func TestClientList(t *testing.T) {
	d := startDaemon(t, `{"addr": "127.0.0.1:0", "admin_addr": "", "udp_addr": "127.0.0.1:0", "client_list": {"mode": "deny", "prefixes": ["-XL0012-"]}}`)
	announce := func(peerID string) map[string]any {
		t.Helper()
		return decodeBody(t, rawGet(t, d.public, "GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id="+peerID+"&port=7001&uploaded=0&downloaded=0&left=5 HTTP/1.0\r\n\r\n"))
	}
	if m := announce("-XL0012-000000000001"); m["failure reason"] != "Your client is banned" {
		t.Errorf("banned client: %v", m)
	}
	if m := announce("-TR4050-000000000001"); m["incomplete"] != int64(1) {
		t.Errorf("other client: %v", m)
	}
	cc := udpClient(t, "udp4", d.udpAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := trackerudp.AnnounceRequest{InfoHash: infohash.T([]byte("aaaaaaaaaaaaaaaaaaaa")), Left: 5, NumWant: -1, Port: 7002}
	copy(req.PeerId[:], "-XL0012-udp000000001")
	if _, _, err := cc.Announce(ctx, req, trackerudp.Options{}); err == nil || !strings.Contains(err.Error(), "Your client is banned") {
		t.Errorf("banned client over UDP: %v", err)
	}

	os.WriteFile(d.config, []byte(`{"addr": "127.0.0.1:0", "admin_addr": "", "udp_addr": "127.0.0.1:0", "client_list": {"mode": "allow", "prefixes": ["-XL"]}}`), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "SIGHUP: reloaded", 1)
	if m := announce("-XL0012-000000000002"); m["incomplete"] != int64(2) {
		t.Errorf("after the reload, the listed client: %v", m)
	}
	if m := announce("-TR4050-000000000002"); m["failure reason"] != "Your client is not on the whitelist" {
		t.Errorf("after the reload, another client: %v", m)
	}
	d.shutdown(t, syscall.SIGTERM)
}

// daemonCmd is the built daemon's command on the configuration cfg,
// written to a file of its own, with systemd's variables left out.
func daemonCmd(t *testing.T, cfg string) *exec.Cmd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemonBinary(t), "-config", path)
	cmd.Env = daemonEnv()
	return cmd
}
