package http

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
)

// The query parsers are checked against net/url, the reference for
// form-encoded queries: whatever the hand-written parsers accept, url
// accepts and reads the same way. The seed corpora are in
// testdata/fuzz/FuzzParseAnnounce and FuzzParseScrape.

// reference is net/url's reading of raw, if it has one that the
// tracker's should match: url refuses ";" separators, which the tracker
// takes as part of a value.
func reference(raw string) (url.Values, bool) {
	if strings.Contains(raw, ";") {
		return nil, false
	}
	v, err := url.ParseQuery(raw)
	return v, err == nil
}

// longKey reports whether v has a parameter name the tracker refuses when
// it is escaped: longer than 32 bytes decoded.
func longKey(v url.Values) bool {
	for k := range v {
		if len(k) > 32 {
			return true
		}
	}
	return false
}

func last(v url.Values, key string) string {
	vs := v[key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func FuzzParseAnnounce(f *testing.F) {
	f.Add(base, true)
	f.Add(base+"&event=started&numwant=50&compact=0&ip=1.2.3.4", true)
	f.Add("info_hash=%zz&&=&%", false)
	f.Fuzz(func(t *testing.T, raw string, allowIP bool) {
		var a tracker.Announce
		var opt announceOptions
		err := parseAnnounce(raw, &a, &opt, allowIP)
		if err != nil {
			var ce bittorrent.ClientError
			if !errors.As(err, &ce) {
				t.Fatalf("%q: error %v is not a ClientError", raw, err)
			}
			return
		}
		if a.Port == 0 {
			t.Fatalf("%q: accepted with port 0", raw)
		}
		v, ok := reference(raw)
		if !ok {
			if !strings.Contains(raw, ";") {
				t.Fatalf("%q: accepted, but net/url refuses it", raw)
			}
			return
		}
		for _, key := range []string{"info_hash", "peer_id"} {
			if len(v[key]) != 1 {
				t.Fatalf("%q: accepted with %d %s values", raw, len(v[key]), key)
			}
		}
		if string(a.InfoHash[:]) != v.Get("info_hash") || string(a.PeerID[:]) != v.Get("peer_id") {
			t.Fatalf("%q: info_hash %x, peer_id %x; net/url reads %x, %x", raw, a.InfoHash, a.PeerID, v.Get("info_hash"), v.Get("peer_id"))
		}
		for key, got := range map[string]uint64{"port": uint64(a.Port), "uploaded": a.Uploaded, "downloaded": a.Downloaded, "left": a.Left} {
			if want, err := strconv.ParseUint(last(v, key), 10, 64); err != nil || want != got {
				t.Fatalf("%q: %s = %d; net/url reads %q", raw, key, got, last(v, key))
			}
		}
		if _, ok := v["event"]; ok {
			if want, err := bittorrent.ParseEvent(last(v, "event")); err != nil || want != a.Event {
				t.Fatalf("%q: event %v; net/url reads %q", raw, a.Event, last(v, "event"))
			}
		}
		if nw := last(v, "numwant"); nw != "" && !strings.HasPrefix(nw, "-") {
			n, err := strconv.ParseUint(nw, 10, 64)
			if err != nil || a.NumWant != int(min(n, 1<<31-1)) {
				t.Fatalf("%q: numwant %d; net/url reads %q", raw, a.NumWant, nw)
			}
		}
		if c, ok := v["compact"]; ok && opt.compact != (c[len(c)-1] != "0") {
			t.Fatalf("%q: compact %v; net/url reads %q", raw, opt.compact, c[len(c)-1])
		}
		if c, ok := v["no_peer_id"]; ok && opt.noPeerID != (c[len(c)-1] == "1") {
			t.Fatalf("%q: no_peer_id %v; net/url reads %q", raw, opt.noPeerID, c[len(c)-1])
		}
		if ip, ok := v["ip"]; ok && allowIP {
			want, err := netip.ParseAddr(ip[len(ip)-1])
			if err != nil || opt.ip != want.Unmap().WithZone("") {
				t.Fatalf("%q: ip %v; net/url reads %q", raw, opt.ip, ip[len(ip)-1])
			}
		} else if opt.ip.IsValid() {
			t.Fatalf("%q: ip %v taken with allow_ip_spoofing %v", raw, opt.ip, allowIP)
		}
	})
}

func FuzzParseScrape(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string, max uint8) {
		limit := int(max%8) + 1
		hashes, err := parseScrape(raw, nil, limit)
		v, ok := reference(raw)
		if err != nil {
			var ce bittorrent.ClientError
			if !errors.As(err, &ce) {
				t.Fatalf("%q: error %v is not a ClientError", raw, err)
			}
			if !ok || longKey(v) {
				return
			}
			// net/url reads a good scrape: the tracker must have found
			// too many hashes, or one that is not 20 bytes.
			bad := len(v["info_hash"]) > limit
			for _, h := range v["info_hash"] {
				bad = bad || len(h) != 20
			}
			if !bad {
				t.Fatalf("%q: refused (%v), but net/url reads %d good info_hash values", raw, err, len(v["info_hash"]))
			}
			if errors.Is(err, tracker.ErrTooManyInfoHashes) && len(v["info_hash"]) <= limit {
				t.Fatalf("%q: too many hashes, but net/url reads %d of at most %d", raw, len(v["info_hash"]), limit)
			}
			return
		}
		if len(hashes) > limit {
			t.Fatalf("%q: %d hashes over a cap of %d", raw, len(hashes), limit)
		}
		if !ok {
			if !strings.Contains(raw, ";") {
				t.Fatalf("%q: accepted, but net/url refuses it", raw)
			}
			return
		}
		want := v["info_hash"]
		if len(want) != len(hashes) {
			t.Fatalf("%q: %d hashes; net/url reads %d", raw, len(hashes), len(want))
		}
		for i := range want {
			if string(hashes[i][:]) != want[i] {
				t.Fatalf("%q: hash %d is %x; net/url reads %x", raw, i, hashes[i], want[i])
			}
		}
	})
}
