package http

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/config"
)

// fuzzProxies are the trusted proxies of FuzzRealIP: loopback, a private
// IPv4 network and an IPv6 one.
var fuzzProxies = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.1/32"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
}

// referenceRealIP is realIP's documented rule written the plain way: the
// header lines joined into one chain, split at commas, walked from the
// right.
func referenceRealIP(remote netip.Addr, header string, lines []string) netip.Addr {
	if !remote.IsValid() || !trusted(fuzzProxies, remote) {
		return remote
	}
	parse := func(s string) (netip.Addr, bool) {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return netip.Addr{}, false
		}
		a = a.Unmap().WithZone("")
		return a, !a.IsUnspecified()
	}
	if header == config.XRealIP {
		if len(lines) != 1 {
			return remote
		}
		if a, ok := parse(lines[0]); ok {
			return a
		}
		return remote
	}
	if len(lines) == 0 {
		return remote
	}
	chain := strings.Split(strings.Join(lines, ","), ",")
	for i := len(chain) - 1; i >= 0; i-- {
		a, ok := parse(chain[i])
		if !ok {
			return remote
		}
		if !trusted(fuzzProxies, a) || i == 0 {
			return a
		}
	}
	return remote
}

// FuzzRealIP checks realIP against referenceRealIP for any socket address
// and one or two header lines of either header. The seed corpus is in
// testdata/fuzz/FuzzRealIP.
func FuzzRealIP(f *testing.F) {
	f.Fuzz(func(t *testing.T, remote string, realIPHeader bool, line1, line2 string, twoLines bool) {
		header := config.XForwardedFor
		if realIPHeader {
			header = config.XRealIP
		}
		cfg := &config.Config{TrustedProxies: fuzzProxies, RealIPHeader: header}
		req := httptest.NewRequest("GET", "/announce", nil)
		req.RemoteAddr = remote
		lines := []string{line1}
		if twoLines {
			lines = append(lines, line2)
		}
		req.Header[strings.ReplaceAll(header, "IP", "Ip")] = lines // the canonical key
		got := realIP(req, cfg)
		want := referenceRealIP(remoteAddr(req), header, lines)
		if got != want {
			t.Fatalf("remote %q, %s %q: realIP %v, want %v", remote, header, lines, got, want)
		}
		if got != remoteAddr(req) && (got.Is4In6() || got.Zone() != "" || got.IsUnspecified()) {
			t.Fatalf("remote %q, %s %q: realIP %v: mapped, zoned or unspecified", remote, header, lines, got)
		}
	})
}
