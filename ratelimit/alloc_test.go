//go:build !race

package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

// TestAllowAllocatesNothing, for IPv4 and IPv6 addresses, allowed or not.
func TestAllowAllocatesNothing(t *testing.T) {
	l := New(0)
	lim := Limit{Interval: time.Second, Burst: 10}
	for _, a := range []string{"192.0.2.1", "2001:db8::1"} {
		addr := netip.MustParseAddr(a)
		if n := testing.AllocsPerRun(100, func() { l.Allow(addr, t0, lim) }); n != 0 {
			t.Errorf("Allow(%s) allocates %v times", a, n)
		}
	}
}
