package http

import (
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/stats"
	"github.com/golang/glog"
)

// This file is UNIT3D's side of the HTTP frontend, for a private tracker
// whose backend keeps its own swarms (backend.Announcer: the unit3d
// backend): announces at /announce/<passkey> and /announce/health/ping on
// the public listener, parsed and answered byte for byte as
// UNIT3D-Announce does (unit3d.md §4); and the site's API under
// /announce/<api_key>/ on the admin listener (backend.SiteAPI).

// unit3dAnnounces is the public listener's handler for an Announcer.
func (s *Server) unit3dAnnounces(a backend.Announcer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/announce/")
		switch {
		case !ok || rest == "" || strings.Contains(rest, "/") && rest != "health/ping":
			http.NotFound(w, r)
		case r.Method != http.MethodGet:
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		case rest == "health/ping":
			w.Header()["Content-Type"] = textPlain
			w.Write([]byte("PONG"))
		default:
			s.unit3dAnnounce(w, r, a, rest)
		}
	})
}

var octetStream = []string{"application/octet-stream"}

// unit3dExchange is the per-request scratch of a UNIT3D announce.
type unit3dExchange struct {
	req   backend.AnnounceRequest
	reply backend.AnnounceReply
	buf   []byte
}

var unit3dExchanges = sync.Pool{New: func() any { return &unit3dExchange{buf: make([]byte, 0, 512)} }}

func (s *Server) unit3dAnnounce(w http.ResponseWriter, r *http.Request, a backend.Announcer, passkey string) {
	start := time.Now()
	x := unit3dExchanges.Get().(*unit3dExchange)
	defer unit3dExchanges.Put(x)
	cfg := s.tracker.Config()
	from := realIP(r, cfg)
	if ok, retry := s.tracker.Allow(from, start); !ok {
		s.refuse(w, r, &exchange{buf: x.buf[:0]}, stats.Announce, retry, start)
		return
	}
	x.req = backend.AnnounceRequest{}
	port, msg := parseUnit3d(r.URL.RawQuery, &x.req)
	if msg == "" {
		msg = unit3dClient(r, cfg, from)
	}
	outcome := stats.ClientError
	if msg == "" {
		x.req.Passkey = passkey
		x.req.Addr = netip.AddrPortFrom(from, port)
		ua := r.Header["User-Agent"] // checked: present, and its last value is the one checked
		x.req.UserAgent = ua[len(ua)-1]
		x.req.Time = start
		x.req.DualStacked = cfg.DualStackedPeers
		a.Announce(&x.req, &x.reply)
		msg = x.reply.Failure
		if msg == "" {
			x.buf = appendUnit3d(x.buf[:0], &x.reply)
			s.stats.RecordPeer(x.reply.Change, x.reply.IPv6)
			outcome = stats.OK
		}
	}
	if msg != "" {
		x.buf = appendUnit3dFailure(x.buf[:0], msg)
	}
	w.Header()["Content-Type"] = octetStream
	w.Write(x.buf)
	s.stats.RecordRequest(stats.Announce, outcome, time.Since(start))
	if glog.V(3) {
		result := "<nil>"
		if msg != "" {
			result = msg
		}
		glog.Infof("%s %s?%s from %s: %s", r.Method, r.URL.Path, r.URL.RawQuery, r.RemoteAddr, result)
	}
}

// unit3dClient runs UNIT3D-Announce's checks 3 to 6 (unit3d.md §4.4): the
// client's address (from real_ip_header when a trusted proxy sent the
// request: a missing or unreadable one is an error), the headers browsers
// send, the User-Agent.
func unit3dClient(r *http.Request, cfg *config.Config, from netip.Addr) string {
	const internal = "Internal tracker error."
	if !from.IsValid() {
		return internal
	}
	if cfg.RealIPHeader != "" && trusted(cfg.TrustedProxies, remoteAddr(r)) {
		v := r.Header.Values(cfg.RealIPHeader)
		if len(v) == 0 {
			return internal
		}
		last := v[len(v)-1]
		if _, ok := parseHeaderAddr(last[strings.LastIndexByte(last, ',')+1:]); !ok {
			return internal
		}
	}
	for _, h := range [...]string{"Accept-Language", "Referer", "Accept-Charset", "Want-Digest"} {
		if _, ok := r.Header[h]; ok {
			return "Abnormal access blocked."
		}
	}
	ua, ok := r.Header["User-Agent"]
	if !ok {
		return "Invalid user agent."
	}
	v := ua[len(ua)-1]
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 || c > 0x7e) && c != '\t' {
			return "Invalid user agent."
		}
	}
	if len(v) > 64 {
		return "The user agent of this client is too long."
	}
	return ""
}

// parseUnit3d reads an announce's query as UNIT3D-Announce's own parser
// does (unit3d.md §4.2): the n-th '=' ends a key that starts after the
// (n-1)-th '&', and its value runs to the n-th '&'; keys are compared as
// sent; info_hash and peer_id are percent-decoded only ('+' is 0x2B);
// numbers are not decoded. It returns the port and the failure message of
// the first bad parameter, in query order, then of the first missing one.
func parseUnit3d(q string, a *backend.AnnounceRequest) (port uint16, msg string) {
	a.NumWant = -1
	const (
		hasHash = 1 << iota
		hasID
		hasPort
		hasUp
		hasDown
		hasLeft
	)
	seen := 0
	eqFrom, ampFrom, keyStart := 0, 0, 0
	for {
		e := strings.IndexByte(q[eqFrom:], '=')
		if e < 0 {
			break
		}
		eq, end := eqFrom+e, len(q)
		if a := strings.IndexByte(q[ampFrom:], '&'); a >= 0 {
			end = ampFrom + a
		}
		if keyStart > eq {
			return 0, "Invalid query string parameter."
		}
		if end < eq+1 {
			return 0, "Invalid query string value."
		}
		key, val := q[keyStart:eq], q[eq+1:end]
		switch key {
		case "info_hash":
			if !unit3dDecode20(val, (*[20]byte)(&a.InfoHash)) {
				return 0, "Invalid 'info_hash'."
			}
			seen |= hasHash
		case "peer_id":
			if !unit3dDecode20(val, (*[20]byte)(&a.PeerID)) {
				return 0, "Invalid 'peer_id'."
			}
			seen |= hasID
		case "port", "uploaded", "downloaded", "left", "numwant":
			size := 64
			if key == "port" {
				size = 16
			}
			n, ok := unit3dParseU(val, size)
			if !ok {
				return 0, "Invalid '" + key + "' (must be greater than or equal to 0)."
			}
			switch key {
			case "port":
				port, seen = uint16(n), seen|hasPort
			case "uploaded":
				a.Uploaded, seen = n, seen|hasUp
			case "downloaded":
				a.Downloaded, seen = n, seen|hasDown
			case "left":
				a.Left, seen = n, seen|hasLeft
			default:
				a.NumWant = int(min(n, 1<<31-1))
			}
		case "compact":
			if val != "1" {
				return 0, "Your client does not support compact announces."
			}
		case "event":
			switch val {
			case "", "empty", "paused":
				a.Event = bittorrent.None
			case "started":
				a.Event = bittorrent.Started
			case "completed":
				a.Event = bittorrent.Completed
			case "stopped":
				a.Event = bittorrent.Stopped
			default:
				return 0, "Unsupported 'event' type."
			}
		case "corrupt":
			a.Corrupt, _ = unit3dParseU(val, 64)
		case "key":
			a.Key = val
		}
		if end == len(q) {
			break
		}
		eqFrom, ampFrom, keyStart = eq+1, end+1, end+1
	}
	for _, m := range [...]struct {
		bit  int
		name string
	}{{hasHash, "info_hash"}, {hasID, "peer_id"}, {hasPort, "port"}, {hasUp, "uploaded"}, {hasDown, "downloaded"}, {hasLeft, "left"}} {
		if seen&m.bit == 0 {
			return 0, "Query parameter '" + m.name + "' is missing."
		}
	}
	return port, ""
}

// unit3dDecode20 percent-decodes s into 20 bytes, as UNIT3D-Announce: the length
// must be 20 plus two per '%', every escape two hex digits, and every other
// byte (a '+' included) is itself.
func unit3dDecode20(s string, out *[20]byte) bool {
	if len(s) != 20+2*strings.Count(s, "%") {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if n == len(out) {
			return false
		}
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return false
			}
			hi, ok1 := unit3dUnhex(s[i+1])
			lo, ok2 := unit3dUnhex(s[i+2])
			if !ok1 || !ok2 {
				return false
			}
			c = hi<<4 | lo
			i += 2
		}
		out[n] = c
		n++
	}
	return n == 20
}

func unit3dUnhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseU parses an unsigned decimal of bits bits, with Rust's optional
// leading '+'.
func unit3dParseU(s string, bits int) (uint64, bool) {
	s = strings.TrimPrefix(s, "+")
	if s == "" || s[0] == '+' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, bits)
	return n, err == nil
}

// appendUnit3d writes a successful reply (unit3d.md §4.7.1, §4.7.2, and
// the critical warnings of §4.7.4, which share its layout).
func appendUnit3d(b []byte, r *backend.AnnounceReply) []byte {
	b = append(b, "d8:completei"...)
	b = strconv.AppendInt(b, int64(r.Complete), 10)
	b = append(b, "e10:downloadedi"...)
	b = strconv.AppendInt(b, int64(r.Downloaded), 10)
	b = append(b, "e10:incompletei"...)
	b = strconv.AppendInt(b, int64(r.Incomplete), 10)
	b = append(b, "e8:intervali"...)
	b = strconv.AppendInt(b, int64(r.Interval/time.Second), 10)
	b = append(b, "e12:min intervali"...)
	b = strconv.AppendInt(b, int64(r.MinInterval/time.Second), 10)
	b = append(b, "e5:peers"...)
	b = strconv.AppendInt(b, int64(len(r.Peers4)), 10)
	b = append(b, ':')
	b = append(b, r.Peers4...)
	if len(r.Peers6) > 0 {
		b = append(b, "6:peers6"...)
		b = strconv.AppendInt(b, int64(len(r.Peers6)), 10)
		b = append(b, ':')
		b = append(b, r.Peers6...)
	}
	if r.Warning != "" {
		b = append(b, "15:warning message"...)
		b = strconv.AppendInt(b, int64(len(r.Warning)), 10)
		b = append(b, ':')
		b = append(b, r.Warning...)
	}
	return append(b, 'e')
}

// appendUnit3dFailure writes a failure (unit3d.md §4.7.3): the interval is
// UNIT3D-Announce's hard-coded 5400 seconds.
func appendUnit3dFailure(b []byte, msg string) []byte {
	b = append(b, "d14:failure reason"...)
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, ':')
	b = append(b, msg...)
	return append(b, "8:intervali5400e12:min intervali5400ee"...)
}

// maxSiteBody bounds a site API request's body.
const maxSiteBody = 1 << 20

// siteAPI wraps the admin handler next with the site's API, for a private
// tracker whose backend is a backend.SiteAPI: every request under
// /announce/ goes to the backend, which checks the key in the path (404
// when wrong, as UNIT3D-Announce, whose routes contain it). These routes
// live on the admin listener: UNIT3D's TRACKER_HOST/TRACKER_PORT point
// there. They need no admin_token: the key is their secret.
func siteAPI(cfg *config.Config, be backend.Conn, next http.Handler) http.Handler {
	api, ok := be.(backend.SiteAPI)
	if !cfg.Private || !ok {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, ok := strings.CutPrefix(r.URL.Path, "/announce/")
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSiteBody+1))
		if err != nil || len(body) > maxSiteBody {
			http.Error(w, "request body unreadable or too large", http.StatusBadRequest)
			return
		}
		status, typ, resp := api.SiteRequest(r.Method, path, r.Header.Get("Content-Type"), body)
		w.Header().Set("Content-Type", typ)
		w.WriteHeader(status)
		w.Write(resp)
	})
}

// siteAnnounces returns the public handler of a private tracker whose
// backend keeps its own swarms (UNIT3D's URLs), if it has one.
func (s *Server) siteAnnounces() (http.Handler, bool) {
	a, ok := s.tracker.Backend().(backend.Announcer)
	if !s.private || !ok {
		return nil, false
	}
	return s.unit3dAnnounces(a), true
}
