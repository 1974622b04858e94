package http

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/chihaya/chihaya/config"
)

// realIP is the announcing peer's address: the socket's (see remoteAddr),
// unless the socket belongs to one of cfg's trusted_proxies, in which case
// the proxy's real_ip_header names it:
//
//   - X-Forwarded-For: the rightmost address of the chain that is not itself
//     a trusted proxy (proxies append the address they were reached from,
//     so everything left of that is the client's own say). Several header
//     lines are one chain, in order. If every address is a trusted proxy,
//     the leftmost counts.
//   - X-Real-IP: its single address.
//
// A missing, repeated (X-Real-IP) or unparsable header is ignored: the
// socket's address counts. IPv4-mapped IPv6 addresses become IPv4. It does
// not allocate for a header-less request or an IPv4/IPv6 address without
// a zone.
func realIP(r *http.Request, cfg *config.Config) netip.Addr {
	addr := remoteAddr(r)
	if cfg.RealIPHeader == "" || !addr.IsValid() || !trusted(cfg.TrustedProxies, addr) {
		return addr
	}
	if strings.EqualFold(cfg.RealIPHeader, config.XRealIP) {
		v := r.Header["X-Real-Ip"] // the canonical form of the key
		if len(v) != 1 {
			return addr
		}
		if a, ok := parseHeaderAddr(v[0]); ok {
			return a
		}
		return addr
	}
	lines := r.Header["X-Forwarded-For"]
	var leftmost netip.Addr
	for i := len(lines) - 1; i >= 0; i-- {
		chain := lines[i]
		for {
			comma := strings.LastIndexByte(chain, ',')
			a, ok := parseHeaderAddr(chain[comma+1:])
			if !ok {
				return addr // garbage anywhere on the way: the header is not believed
			}
			if !trusted(cfg.TrustedProxies, a) {
				return a
			}
			leftmost = a
			if comma < 0 {
				break
			}
			chain = chain[:comma]
		}
	}
	if leftmost.IsValid() {
		return leftmost
	}
	return addr
}

// parseHeaderAddr parses one address of a header, surrounding spaces
// allowed. The unspecified address (0.0.0.0, ::) is refused: no peer has
// it. It is recognised once unmapped and without a zone (FuzzRealIP found
// "::%0" and "::ffff:0.0.0.0" taken for a peer's address).
func parseHeaderAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, false
	}
	a = a.Unmap().WithZone("")
	if a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

// trusted reports whether a is inside one of the prefixes.
func trusted(proxies []netip.Prefix, a netip.Addr) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
