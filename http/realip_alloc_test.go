//go:build !race

package http

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/chihaya/chihaya/config"
)

// TestRealIPFromHeaderAllocatesNothing: walking an X-Forwarded-For chain
// or reading X-Real-IP costs no allocation either.
func TestRealIPFromHeaderAllocatesNothing(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct{ header, value string }{
		{config.XForwardedFor, "6.6.6.6, 198.51.100.7, 10.0.0.3"},
		{config.XRealIP, "2001:db8::7"},
	} {
		cfg := &config.Config{TrustedProxies: proxies, RealIPHeader: tc.header}
		req := httptest.NewRequest("GET", "/announce", nil)
		req.RemoteAddr = "10.0.0.1:1"
		req.Header.Set(tc.header, tc.value)
		if n := testing.AllocsPerRun(200, func() { realIP(req, cfg) }); n != 0 {
			t.Errorf("%s: %v allocations", tc.header, n)
		}
	}
}
