package http

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/chihaya/chihaya/config"
)

func TestRealIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	xff := &config.Config{TrustedProxies: proxies, RealIPHeader: "X-Forwarded-For"}
	xri := &config.Config{TrustedProxies: proxies, RealIPHeader: "x-real-ip"}
	none := &config.Config{}
	for _, tc := range []struct {
		name    string
		cfg     *config.Config
		remote  string
		headers map[string][]string
		want    string
	}{
		{"no header configured", none, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"1.2.3.4"}}, "10.0.0.1"},
		{"untrusted socket", xff, "192.0.2.1:1", map[string][]string{"X-Forwarded-For": {"1.2.3.4"}}, "192.0.2.1"},
		{"untrusted socket, X-Real-IP", xri, "192.0.2.1:1", map[string][]string{"X-Real-Ip": {"1.2.3.4"}}, "192.0.2.1"},
		{"trusted, no header", xff, "10.0.0.1:1", nil, "10.0.0.1"},
		{"one address", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"rightmost untrusted", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.7"}}, "198.51.100.7"},
		{"forged left part", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"10.9.9.9, 6.6.6.6,198.51.100.7, 10.0.0.2"}}, "198.51.100.7"},
		{"proxies skipped", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.7, 10.0.0.3, 10.0.0.2"}}, "198.51.100.7"},
		{"all trusted: leftmost", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"10.0.0.4, 10.0.0.3"}}, "10.0.0.4"},
		{"several lines are one chain", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.7", "10.0.0.3"}}, "198.51.100.7"},
		{"several lines, last wins", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"6.6.6.6", "198.51.100.7, 10.0.0.3"}}, "198.51.100.7"},
		{"IPv6 client", xff, "[fd00::1]:1", map[string][]string{"X-Forwarded-For": {"2001:db8::5"}}, "2001:db8::5"},
		{"IPv4-mapped client", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.7"}}, "198.51.100.7"},
		{"IPv4-mapped proxy socket", xff, "[::ffff:10.0.0.1]:1", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"IPv4-mapped proxy in chain", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.7, ::ffff:10.0.0.2"}}, "198.51.100.7"},
		{"zone dropped", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"fe80::1%eth0"}}, "fe80::1"},
		{"garbage", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"example.com"}}, "10.0.0.1"},
		{"garbage on the right", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.7, unknown"}}, "10.0.0.1"},
		{"garbage behind a proxy", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"junk, 10.0.0.2"}}, "10.0.0.1"},
		{"garbage left of the client is never read", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"junk, 198.51.100.7"}}, "198.51.100.7"},
		{"empty element", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.7,,10.0.0.2"}}, "10.0.0.1"},
		{"empty header", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {""}}, "10.0.0.1"},
		{"with a port", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.7:5000"}}, "10.0.0.1"},
		{"unspecified", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"0.0.0.0"}}, "10.0.0.1"},
		{"unspecified with a zone", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"::%0"}}, "10.0.0.1"},
		{"unspecified, mapped", xff, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"::ffff:0.0.0.0"}}, "10.0.0.1"},
		{"X-Real-IP ignored under X-Forwarded-For", xff, "10.0.0.1:1", map[string][]string{"X-Real-Ip": {"198.51.100.7"}}, "10.0.0.1"},
		{"X-Real-IP", xri, "10.0.0.1:1", map[string][]string{"X-Real-Ip": {" 198.51.100.7 "}}, "198.51.100.7"},
		{"X-Real-IP mapped", xri, "10.0.0.1:1", map[string][]string{"X-Real-Ip": {"::ffff:198.51.100.7"}}, "198.51.100.7"},
		{"X-Real-IP twice", xri, "10.0.0.1:1", map[string][]string{"X-Real-Ip": {"198.51.100.7", "6.6.6.6"}}, "10.0.0.1"},
		{"X-Real-IP list", xri, "10.0.0.1:1", map[string][]string{"X-Real-Ip": {"6.6.6.6, 198.51.100.7"}}, "10.0.0.1"},
		{"X-Real-IP garbage", xri, "10.0.0.1:1", map[string][]string{"X-Real-Ip": {"nobody"}}, "10.0.0.1"},
		{"X-Forwarded-For ignored under X-Real-IP", xri, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "10.0.0.1"},
		{"bad socket address", xff, "@", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "invalid IP"},
	} {
		req := httptest.NewRequest("GET", "/announce", nil)
		req.RemoteAddr = tc.remote
		for k, v := range tc.headers {
			req.Header[k] = v
		}
		if got := realIP(req, tc.cfg).String(); got != tc.want {
			t.Errorf("%s: %s with %v: got %s, want %s", tc.name, tc.remote, tc.headers, got, tc.want)
		}
	}
}

// TestAnnounceBehindProxy goes through the handler: the swarm records the
// address the trusted proxy names, and the ip parameter still needs
// allow_ip_spoofing.
func TestAnnounceBehindProxy(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.RealIPHeader = config.XForwardedFor
	})
	announceVia := func(remote, xff, target string) map[string]any {
		t.Helper()
		return getVia(t, s, remote, xff, target)
	}
	announceVia("127.0.0.1:5000", "6.6.6.6, 198.51.100.7", query(ih1, peerID(1), 7001, 0))
	announceVia("192.0.2.9:5000", "198.51.100.8", query(ih1, peerID(2), 7002, 0))               // untrusted: its socket counts
	announceVia("127.0.0.1:5000", "198.51.100.9", query(ih1, peerID(3), 7003, 0, "ip=1.1.1.1")) // no spoofing
	m := announceVia("127.0.0.1:5000", "203.0.113.1", query(ih1, peerID(4), 7004, 1))
	want := map[string]bool{"198.51.100.7:7001": true, "192.0.2.9:7002": true, "198.51.100.9:7003": true}
	peers, _ := m["peers"].(string)
	for i := 0; i+6 <= len(peers); i += 6 {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte([]byte(peers[i:i+4]))), uint16(peers[i+4])<<8|uint16(peers[i+5]))
		if !want[ap.String()] {
			t.Errorf("unexpected peer %v", ap)
		}
		delete(want, ap.String())
	}
	if len(want) != 0 {
		t.Errorf("missing peers %v in %q", want, peers)
	}
	if m["external ip"] != "\xcb\x00\x71\x01" {
		t.Errorf("external ip %q, want 203.0.113.1", m["external ip"])
	}
}

// getVia serves target from remote, through a proxy that names xff in
// X-Forwarded-For when xff is not empty, and returns the canonical bencode
// answer, decoded.
func getVia(t *testing.T, s *Server, remote, xff, target string) map[string]any {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	req.RemoteAddr = remote
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return decodeCanonical(t, rec.Body.Bytes())
}
