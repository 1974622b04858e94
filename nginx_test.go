package chihaya

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/config"
)

// startNginx runs nginx on dist/nginx/chihaya.conf, with only its
// addresses replaced: the upstream is tracker, and it listens on 127.0.0.1
// and ::1 at a free port, returned. Everything nginx writes stays in a
// temporary directory; it is stopped when the test ends.
func startNginx(t *testing.T, tracker string) int {
	t.Helper()
	bin := needProgram(t, "nginx", "nginx")
	shipped, err := os.ReadFile("dist/nginx/chihaya.conf")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := string(shipped)
	for _, r := range [][2]string{
		{"server 127.0.0.1:6881;", "server " + tracker + ";"},
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port)},
		{"listen [::]:80;", fmt.Sprintf("listen [::1]:%d;", port)},
	} {
		if strings.Count(conf, r[0]) != 1 {
			t.Fatalf("dist/nginx/chihaya.conf no longer has %q once: update this test with it", r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "chihaya.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	mainConf := fmt.Sprintf(`# nginx in the foreground, one process, every file under %[1]s
daemon off;
master_process off;
worker_processes 1;
%[2]s
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/chihaya.conf;
}
`, dir, user)
	mainPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(mainPath, []byte(mainConf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir+"/", "-c", mainPath, "-e", filepath.Join(dir, "error.log"))
	p := startProcess(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx's error log:\n%s", b)
		}
	})
	waitPort(t, fmt.Sprintf("127.0.0.1:%d", port), p)
	return port
}

// getFrom sends request to addr from the local address from (a loopback
// address standing in for a client) and returns the raw response.
func getFrom(t *testing.T, from, addr, request string) string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialling %s from %s: %v", addr, from, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, request)
	b, _ := io.ReadAll(c)
	return string(b)
}

// announceRequest is a seeder's (left=0) or leecher's announce of torrent
// "nnnn...", with extra header lines.
func announceRequest(peer, port int, left int, headers ...string) string {
	return fmt.Sprintf("GET /announce?info_hash=nnnnnnnnnnnnnnnnnnnn&peer_id=-NG0001-%012d&port=%d&uploaded=0&downloaded=0&left=%d HTTP/1.1\r\n"+
		"Host: tracker.example\r\nConnection: close\r\n%s\r\n", peer, port, left, strings.Join(append(headers, ""), "\r\n"))
}

// compactPeers decodes a compact peers or peers6 string.
func compactPeers(t *testing.T, s any, size int) []string {
	t.Helper()
	b, _ := s.(string)
	if len(b)%size != 0 {
		t.Fatalf("compact peers %q: length not a multiple of %d", b, size)
	}
	var out []string
	for i := 0; i < len(b); i += size {
		ip, _ := netip.AddrFromSlice([]byte(b[i : i+size-2]))
		out = append(out, netip.AddrPortFrom(ip, uint16(b[i+size-2])<<8|uint16(b[i+size-1])).String())
	}
	return out
}

// TestBehindNginx runs the shipped nginx configuration in front of the
// tracker, with clients on other loopback addresses (127.0.0.2, ...): the
// swarm must hold each client's own address, never nginx's 127.0.0.1, and
// no client can choose its address with a forged header, through nginx or
// straight to the tracker.
func TestBehindNginx(t *testing.T) {
	needProgram(t, "nginx", "nginx")
	needIPv6Loopback(t)
	for _, header := range []string{config.XForwardedFor, config.XRealIP} {
		t.Run(header, func(t *testing.T) {
			tracker, _ := start(t, func(c *config.Config) {
				c.AdminAddr = ""
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
				c.RealIPHeader = header
			})
			port := startNginx(t, tracker)
			nginx := fmt.Sprintf("127.0.0.1:%d", port)
			forged := []string{"X-Forwarded-For: 10.9.9.9, 127.0.0.1", "X-Real-IP: 10.9.9.9"}

			want := []string{"127.0.0.2:7002", "127.0.0.3:7003", "127.0.0.4:7004"}
			decodeBody(t, getFrom(t, "127.0.0.2", nginx, announceRequest(2, 7002, 0)))
			// Forged headers through nginx: nginx appends (X-Forwarded-For)
			// or overwrites (X-Real-IP), so the real address counts.
			decodeBody(t, getFrom(t, "127.0.0.3", nginx, announceRequest(3, 7003, 0, forged...)))
			// Straight to the tracker from an address that is no proxy:
			// the headers are ignored.
			decodeBody(t, getFrom(t, "127.0.0.4", tracker, announceRequest(4, 7004, 0, forged...)))
			decodeBody(t, getFrom(t, "::1", fmt.Sprintf("[::1]:%d", port), announceRequest(6, 7006, 0, forged...)))
			want6 := []string{"[::1]:7006"}

			// A leecher gets every seeder, each by its own address.
			m := decodeBody(t, getFrom(t, "127.0.0.5", nginx, announceRequest(5, 7005, 100, forged[0])))
			got := compactPeers(t, m["peers"], 6)
			slices.Sort(got)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("peers %v, want %v", got, want)
			}
			if got6 := compactPeers(t, m["peers6"], 18); strings.Join(got6, " ") != strings.Join(want6, " ") {
				t.Errorf("peers6 %v, want %v", got6, want6)
			}
			if m["external ip"] != "\x7f\x00\x00\x05" {
				t.Errorf("external ip %q, want 127.0.0.5", m["external ip"])
			}
			if m["complete"] != int64(len(want)+len(want6)) || m["incomplete"] != int64(1) {
				t.Errorf("counts: %v", m)
			}
			// Requests from several clients share nginx's upstream
			// connections (keepalive): each is judged on its own.
			for i := range 20 {
				from := "127.0.0." + strconv.Itoa(10+i%5)
				m := decodeBody(t, getFrom(t, from, nginx, announceRequest(10+i%5, 7100+i%5, 100, forged...)))
				if ext, _ := netip.AddrFromSlice([]byte(m["external ip"].(string))); ext.String() != from {
					t.Errorf("request %d from %s: the tracker saw %s", i, from, ext)
				}
			}
		})
	}
}
