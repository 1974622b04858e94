//go:build !race

package udp

import (
	"net/netip"
	"testing"

	"github.com/chihaya/chihaya/config"
)

// TestRateLimitedHandlerAllocatesNothing: with rate_limit on, an allowed
// announce allocates nothing, and neither does a refused one.
func TestRateLimitedHandlerAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   config.RateLimit
		refused bool
	}{
		{"Allowed", config.RateLimit{RequestsPerSecond: 1e6, Burst: 10000}, false},
		{"Refused", config.RateLimit{RequestsPerSecond: 1.0 / 3600, Burst: 1}, true},
	} {
		w := newWorker(newTestServer(t, func(c *config.Config) { c.RateLimit = tc.limit }, nil))
		c := newClient(t, w, "10.0.0.7:1")
		p := c.announcePacket(ann{ih: hash(1), peer: peer(7), left: 1, numWant: 50, port: 7007})
		from := netip.MustParseAddrPort("10.0.0.7:1")
		out := w.handle(p, from, t0, nil)
		out = w.handle(p, from, t0, out)
		if r := decodeAnswer(t, out, actionAnnounce, 6); (r.err != "") != tc.refused {
			t.Fatalf("%s: answer %+v", tc.name, r)
		}
		if n := testing.AllocsPerRun(200, func() { out = w.handle(p, from, t0, out) }); n != 0 {
			t.Errorf("%s: the handler allocates %v times per announce", tc.name, n)
		}
	}
}
