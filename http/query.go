package http

import (
	"net/netip"
	"strings"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
)

// Query parsing works on the raw query string, without url.ParseQuery's
// maps and strings: announces are the hot path, and the values that matter
// (binary info_hash and peer_id, numbers) decode straight into their
// destinations. Every value is checked for bad escapes, even those the
// tracker ignores, so that a malformed request is refused whole.

// announceOptions are the parts of an announce only HTTP cares about.
type announceOptions struct {
	compact  bool
	noPeerID bool
	ip       netip.Addr // the "ip" parameter, if given and allowed
}

// each calls fn for every key=value pair of a raw query, with the key
// unescaped and the value still escaped. Empty pairs are skipped.
func each(raw string, fn func(key, value string) error) error {
	var kbuf [32]byte
	for raw != "" {
		// IndexByte, not strings.Cut: Cut searches for a substring, and
		// with eight pairs per announce its overhead showed in profiles.
		pair := raw
		if i := strings.IndexByte(raw, '&'); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			raw = ""
		}
		if pair == "" {
			continue
		}
		k, v := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		key := k
		if hasEscapes(k) {
			b, err := unescape(kbuf[:0], k, len(kbuf))
			if err != nil {
				return bittorrent.ClientError("malformed query: bad escape in a parameter name")
			}
			key = string(b)
		}
		if err := fn(key, v); err != nil {
			return err
		}
	}
	return nil
}

// hasEscapes reports whether a parameter name or a number needs decoding.
// Both are short and almost never escaped: a plain loop beats
// strings.ContainsAny.
func hasEscapes(k string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] == '%' || k[i] == '+' {
			return true
		}
	}
	return false
}

// unescape appends the form-decoded s to dst ("+" is a space, "%HH" a byte
// in either case) and fails on a bad escape or past max bytes.
func unescape(dst []byte, s string, max int) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			var ok bool
			if c, ok = escaped(s, i); !ok {
				return dst, errBadEscape
			}
			i += 2
		}
		if len(dst) >= max {
			return dst, errTooLong
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// escaped decodes the escape "%HH" at s[i].
func escaped(s string, i int) (byte, bool) {
	if i+2 >= len(s) {
		return 0, false
	}
	hi, lo := hexVal[s[i+1]], hexVal[s[i+2]]
	return hi<<4 | lo, hi|lo < 16
}

var (
	errBadEscape = bittorrent.ClientError("malformed query: bad % escape")
	errTooLong   = bittorrent.ClientError("malformed query: value too long")
)

// hexVal is the value of each hex digit, in either case, and 0xff for any
// other byte: a load instead of three comparisons for each of the forty
// digits of an escaped info_hash.
var hexVal = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = byte(c - 'A' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()

// decode20 decodes an escaped info_hash or peer_id, which must be exactly 20
// bytes.
func decode20(dst *[20]byte, v, name string) error {
	b, err := unescape(dst[:0], v, 20)
	if err == errTooLong || (err == nil && len(b) != 20) {
		return bittorrent.ClientError(name + " must be 20 bytes")
	}
	return err
}

// checkEscapes validates a value the tracker does not otherwise read.
func checkEscapes(v string) error {
	for i := strings.IndexByte(v, '%'); i >= 0; i = strings.IndexByte(v, '%') {
		if _, ok := escaped(v, i); !ok {
			return errBadEscape
		}
		v = v[i+3:]
	}
	return nil
}

// parseUint reads a non-negative decimal number no larger than max.
func parseUint(v string, max uint64) (uint64, bool) {
	if hasEscapes(v) { // rare: clients do not escape digits
		var buf [24]byte
		b, err := unescape(buf[:0], v, len(buf))
		if err != nil {
			return 0, false
		}
		v = string(b)
	}
	if len(v) == 0 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (max-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

const maxInt64 = 1<<63 - 1

// Which required parameters an announce carried.
const (
	hasInfoHash = 1 << iota
	hasPeerID
	hasPort
	hasUploaded
	hasDownloaded
	hasLeft
	hasAll = hasInfoHash | hasPeerID | hasPort | hasUploaded | hasDownloaded | hasLeft
)

var required = [...]string{"info_hash", "peer_id", "port", "uploaded", "downloaded", "left"}

// parseAnnounce fills a and opt from a raw announce query. It does not set
// a.Addr: where the peer is, is the caller's business.
func parseAnnounce(raw string, a *tracker.Announce, opt *announceOptions, allowIP bool) error {
	*a = tracker.Announce{NumWant: -1}
	*opt = announceOptions{compact: true}
	seen := 0
	err := each(raw, func(key, v string) error {
		bad := func() error { return bittorrent.ClientError("invalid " + key) }
		switch key {
		case "info_hash", "peer_id":
			bit, dst := hasInfoHash, (*[20]byte)(&a.InfoHash)
			if key == "peer_id" {
				bit, dst = hasPeerID, (*[20]byte)(&a.PeerID)
			}
			if seen&bit != 0 {
				return bittorrent.ClientError(key + " given more than once")
			}
			seen |= bit
			return decode20(dst, v, key)
		case "port":
			n, ok := parseUint(v, 65535)
			if !ok || n == 0 {
				return bittorrent.ClientError("invalid port: want 1 to 65535")
			}
			a.Port = uint16(n)
			seen |= hasPort
		case "uploaded", "downloaded", "left", "corrupt":
			n, ok := parseUint(v, maxInt64)
			if !ok {
				return bittorrent.ClientError("invalid " + key + ": want a non-negative integer")
			}
			switch key {
			case "uploaded":
				a.Uploaded, seen = n, seen|hasUploaded
			case "downloaded":
				a.Downloaded, seen = n, seen|hasDownloaded
			case "left":
				a.Left, seen = n, seen|hasLeft
			default:
				a.Corrupt = n
			}
		case "event":
			var buf [16]byte
			b, err := unescape(buf[:0], v, len(buf))
			if err == nil {
				a.Event, err = bittorrent.ParseEvent(string(b))
			}
			if err != nil {
				return bittorrent.ClientError("unknown event: want started, stopped, completed, paused or none")
			}
		case "numwant":
			if strings.HasPrefix(v, "-") { // "no preference", as some clients say it
				if _, ok := parseUint(v[1:], maxInt64); !ok {
					return bad()
				}
				return nil
			}
			n, ok := parseUint(v, maxInt64)
			if !ok {
				return bad()
			}
			a.NumWant = int(min(n, 1<<31-1))
		case "compact", "no_peer_id":
			// Escapes decoded, as in any other value (FuzzParseAnnounce
			// found compact=%30 taken for compact).
			if err := checkEscapes(v); err != nil {
				return err
			}
			if hasEscapes(v) {
				var buf [2]byte
				if b, err := unescape(buf[:0], v, len(buf)); err == nil {
					v = string(b)
				} else {
					v = "" // too long to be "0" or "1"
				}
			}
			if key == "compact" {
				opt.compact = v != "0"
			} else {
				opt.noPeerID = v == "1"
			}
		case "ip":
			if !allowIP {
				return checkEscapes(v)
			}
			var buf [64]byte
			b, err := unescape(buf[:0], v, len(buf))
			if err != nil {
				return bad()
			}
			ip, err := netip.ParseAddr(string(b))
			if err != nil {
				return bad()
			}
			if ip = ip.Unmap().WithZone(""); ip.IsUnspecified() { // no peer has it, as with realIP's headers
				return bad()
			}
			opt.ip = ip
		default:
			return checkEscapes(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if seen != hasAll {
		for i, name := range required {
			if seen&(1<<i) == 0 {
				return bittorrent.ClientError("missing " + name)
			}
		}
	}
	return nil
}

// parseScrape appends the info_hashes of a raw scrape query to hashes,
// refusing more than max.
func parseScrape(raw string, hashes []bittorrent.InfoHash, max int) ([]bittorrent.InfoHash, error) {
	err := each(raw, func(key, v string) error {
		if key != "info_hash" {
			return checkEscapes(v)
		}
		if len(hashes) >= max {
			return tracker.ErrTooManyInfoHashes
		}
		hashes = append(hashes, bittorrent.InfoHash{})
		return decode20((*[20]byte)(&hashes[len(hashes)-1]), v, "info_hash")
	})
	return hashes, err
}
