package chihaya

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/config"
)

// stateConfig is a daemon configuration keeping its swarms in path, with
// extra keys added (each ending in a comma).
func stateConfig(path, params, extra string) string {
	return `{"addr": "127.0.0.1:0", "admin_addr": "127.0.0.1:0", "udp_addr": "", ` + extra +
		`"tracker": {"driver": "memory", "params": {"state_file": "` + path + `"` + params + `}}}`
}

// stateAnnounce announces peer n (a seeder if seeder) to the torrent
// "aaaa..." (or "bbbb..." if b) and returns the answer.
func stateAnnounce(t *testing.T, addr string, n int, seeder, b bool, event string) map[string]any {
	t.Helper()
	hash, left := strings.Repeat("a", 20), 5
	if b {
		hash = strings.Repeat("b", 20)
	}
	if seeder {
		left = 0
	}
	return decodeBody(t, rawGet(t, addr, fmt.Sprintf("GET /announce?info_hash=%s&peer_id=-TR4050-%012d&port=%d&uploaded=0&downloaded=0&left=%d&event=%s&compact=1 HTTP/1.0\r\n\r\n",
		hash, n, 7000+n, left, event)))
}

// peerPorts are the ports of a compact answer's IPv4 peers.
func peerPorts(m map[string]any) []int {
	var ports []int
	p, _ := m["peers"].(string)
	for i := 0; i+6 <= len(p); i += 6 {
		ports = append(ports, int(p[i+4])<<8|int(p[i+5]))
	}
	return ports
}

// fillState announces the swarms every state test expects back: torrent A
// with seeder 1 (who completed) and leechers 2 and 3, torrent B with
// leecher 4.
func fillState(t *testing.T, addr string) {
	t.Helper()
	stateAnnounce(t, addr, 2, false, false, "started")
	stateAnnounce(t, addr, 3, false, false, "started")
	stateAnnounce(t, addr, 1, false, false, "started")
	stateAnnounce(t, addr, 1, true, false, "completed")
	stateAnnounce(t, addr, 4, false, true, "started")
}

// checkState checks the daemon at addr has fillState's swarms: a new
// seeder of A gets leechers 2 and 3; the scrape has A's and B's counts.
func checkState(t *testing.T, addr, when string) {
	t.Helper()
	m := stateAnnounce(t, addr, 9, true, false, "started")
	if ports := peerPorts(m); m["complete"] != int64(2) || m["incomplete"] != int64(2) || m["downloaded"] != int64(1) || len(ports) != 2 || ports[0]+ports[1] != 7002+7003 {
		t.Errorf("%s: a new seeder of A gets %v (peers on ports %v); want 2 seeders, leechers 2 and 3, 1 download", when, m, ports)
	}
	s := decodeBody(t, rawGet(t, addr, "GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash=bbbbbbbbbbbbbbbbbbbb HTTP/1.0\r\n\r\n"))
	files, _ := s["files"].(map[string]any)
	a, _ := files[strings.Repeat("a", 20)].(map[string]any)
	b, _ := files[strings.Repeat("b", 20)].(map[string]any)
	if a["complete"] != int64(2) || a["incomplete"] != int64(2) || a["downloaded"] != int64(1) || b["incomplete"] != int64(1) {
		t.Errorf("%s: scrape %v", when, s)
	}
	stateAnnounce(t, addr, 9, true, false, "stopped")
}

// TestStateFileRestart: the built daemon writes its swarms on SIGTERM,
// after the drain, and the next one serves them again at once.
func TestStateFileRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	cfg := stateConfig(path, "", "")
	d := startDaemon(t, cfg)
	d.waitLog(t, "state_file: "+path+" holds no swarm (yet): starting empty", 1)
	fillState(t, d.public)
	d.shutdown(t, syscall.SIGTERM)
	log := d.log.String()
	if drained, wrote := strings.Index(log, "shutting down: draining"), strings.Index(log, "state_file: wrote 2 swarms, 4 peers"); drained < 0 || wrote < drained {
		t.Errorf("the state is not written after the drain:\n%s", log)
	}

	d = startDaemon(t, cfg)
	d.waitLog(t, "state_file: loaded 2 swarms, 4 peers from "+path, 1)
	// The statistics start from the swarms loaded.
	stats := rawGet(t, d.admin, "GET /stats?flatten HTTP/1.0\r\n\r\n")
	for _, want := range []string{`"Torrents.Size":2`, `"Peers.IPv4.Seeds.Current":1`, `"Peers.IPv4.Peers.Current":3`} {
		if !strings.Contains(stats, want) {
			t.Errorf("/stats after loading the state has no %s:\n%s", want, stats)
		}
	}
	checkState(t, d.public, "after a restart")
	d.shutdown(t, syscall.SIGTERM)
}

// TestStateFileSnapshot: killed with SIGKILL, the daemon cannot write its
// state; the next one loads the last periodic snapshot.
func TestStateFileSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	cfg := stateConfig(path, `, "state_interval": "200ms"`, "")
	d := startDaemon(t, cfg)
	fillState(t, d.public)
	d.waitLog(t, "state_file: wrote 2 swarms, 4 peers", 1)
	d.cmd.Process.Kill()
	d.wait(t)
	if strings.Contains(d.log.String(), "shut down cleanly") {
		t.Fatal("the daemon shut down cleanly on SIGKILL?")
	}
	d = startDaemon(t, cfg)
	d.waitLog(t, "state_file: loaded 2 swarms, 4 peers from "+path, 1)
	checkState(t, d.public, "after SIGKILL")
}

// TestStateFileRefused: a state file that cannot be used is logged with
// the reason, and the daemon starts empty and serves.
func TestStateFileRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	// announce 1s, so that a file 3 seconds old is older than the peer
	// lifetime (2s).
	cfg := stateConfig(path, "", `"announce": "1s", "min_announce": "1s",`)
	d := startDaemon(t, cfg)
	fillState(t, d.public)
	d.shutdown(t, syscall.SIGTERM)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	withCRC := func(b []byte) []byte {
		binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], crc32.MakeTable(crc32.Castagnoli)))
		return b
	}
	for _, tc := range []struct {
		name   string
		file   func() []byte
		reason string
	}{
		{"truncated", func() []byte { return good[:len(good)-10] }, "truncated: no trailer"},
		{"corrupt", func() []byte { b := slices.Clone(good); b[50] ^= 0x40; return b }, "corrupt: checksum"},
		{"foreign", func() []byte { return []byte("d8:intervali1800ee") }, "not a chihaya state file"},
		{"version", func() []byte { b := slices.Clone(good); b[8] = 99; return withCRC(b) }, "format version 99"},
		{"layout", func() []byte { b := slices.Clone(good); b[12] = 32; return withCRC(b) }, "another record layout"},
		{"too old", func() []byte { time.Sleep(3 * time.Second); return good }, "too old: written"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := tc.file()
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			d := startDaemon(t, cfg)
			d.waitLog(t, "state_file: not loaded: "+path+": "+tc.reason, 1)
			d.waitLog(t, "; starting empty (the file is kept as "+path+".refused)", 1)
			if kept, err := os.ReadFile(path + ".refused"); err != nil || string(kept) != string(content) {
				t.Errorf("the refused file is not kept aside as it was: %v", err)
			}
			if m := stateAnnounce(t, d.public, 9, true, false, "started"); m["incomplete"] != int64(0) || m["complete"] != int64(1) {
				t.Errorf("after a refused file: %v, want an empty swarm", m)
			}
			d.cmd.Process.Kill() // no state written: the next case starts from the good file
			d.wait(t)
		})
	}
}

// TestSocketActivationKeepsPeers: under socket activation with a state
// file, a restart (systemctl restart) loses neither a connection nor a
// peer: connections made while no daemon runs wait in the socket, and
// the next daemon answers them with the swarms of the last.
func TestSocketActivationKeepsPeers(t *testing.T) {
	sock := notifySocket(t)
	pubFile, pubAddr := passedSocket(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "config.json")
	os.WriteFile(cfgPath, []byte(`{"addr": "192.0.2.1:6881", "admin_addr": "", "udp_addr": "", "tracker": {"driver": "memory", "params": {"state_file": "`+path+`"}}}`), 0o644)
	activated := func() *process {
		t.Helper()
		cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, daemonBinary(t), "-config", cfgPath)
		cmd.ExtraFiles = []*os.File{pubFile}
		cmd.Env = daemonEnv("LISTEN_FDS=1", "LISTEN_FDNAMES=public")
		return startProcess(t, cmd)
	}
	first := activated()
	expectNotify(t, sock, "READY=1")
	fillState(t, pubAddr)
	first.shutdown(t, syscall.SIGTERM)
	expectNotify(t, sock, "STOPPING=1")

	// While no daemon runs, a seeder of A connects and sends its
	// announce: it waits in the socket.
	c, err := net.DialTimeout("tcp", pubAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-TR4050-%012d&port=7009&uploaded=0&downloaded=0&left=0&compact=1 HTTP/1.0\r\n\r\n", 9)

	second := activated()
	defer second.shutdown(t, syscall.SIGTERM)
	answer, _ := io.ReadAll(c) // the daemon closes an HTTP/1.0 connection once it has answered
	m := decodeBody(t, string(answer))
	if ports := peerPorts(m); m["complete"] != int64(2) || m["incomplete"] != int64(2) || len(ports) != 2 {
		t.Errorf("the announce queued during the restart: %v (peers on ports %v); want the first daemon's swarm", m, ports)
	}
	expectNotify(t, sock, "READY=1")
	checkState(t, pubAddr, "after a socket-activated restart")
}

// TestStateFileShipped: the systemd unit gives the daemon a state
// directory, and the shipped site configuration keeps its swarms there.
func TestStateFileShipped(t *testing.T) {
	if got := unitFile(t, "dist/systemd/chihaya.service")["Service.StateDirectory"]; len(got) != 1 || got[0] != "chihaya" {
		t.Errorf("chihaya.service: StateDirectory=%q, want chihaya", got)
	}
	cfg, err := config.Load("dist/gazelle.json")
	if err != nil {
		t.Fatal(err)
	}
	var params struct {
		StateFile string `json:"state_file"`
	}
	json.Unmarshal(cfg.Tracker.Params, &params)
	if params.StateFile != "/var/lib/chihaya/state" {
		t.Errorf("dist/gazelle.json: state_file %q, want one in StateDirectory (/var/lib/chihaya/state)", params.StateFile)
	}
}
