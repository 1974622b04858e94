package http

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
)

// A valid announce's required parameters, with an info_hash escaped the way
// aria2 does (upper case, raw unreserved characters).
const (
	ihAria2 = "%B1%CBQ%DB%97%28%0Bn%E3B%B6%95%B1%CE%8F%96-f%8D%3B"
	ihRaw   = "\xb1\xcbQ\xdb\x97(\x0bn\xe3B\xb6\x95\xb1\xce\x8f\x96-f\x8d;"
	base    = "info_hash=" + ihAria2 + "&peer_id=-TR3000-g2ox0s0ux8z7&port=51413&uploaded=1&downloaded=2&left=3"
)

func TestParseAnnounceValid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		query string
		check func(a *tracker.Announce, o *announceOptions) bool
	}{
		{"RequiredOnly", base, func(a *tracker.Announce, o *announceOptions) bool {
			return string(a.InfoHash[:]) == ihRaw && string(a.PeerID[:]) == "-TR3000-g2ox0s0ux8z7" &&
				a.Port == 51413 && a.Uploaded == 1 && a.Downloaded == 2 && a.Left == 3 &&
				a.Event == bittorrent.None && a.NumWant == -1 && o.compact && !o.noPeerID
		}},
		{"LowerCaseEscapes", strings.Replace(base, ihAria2, strings.ToLower(ihAria2), 1), func(a *tracker.Announce, _ *announceOptions) bool {
			// ToLower also lowers the raw letters Q, B, n: a different hash, still 20 bytes.
			return a.InfoHash[0] == 0xb1 && a.InfoHash[2] == 'q'
		}},
		{"PlusIsSpace", strings.Replace(base, "-TR3000-g2ox0s0ux8z7", "-TR3000-g2ox0s0ux8+7", 1), func(a *tracker.Announce, _ *announceOptions) bool {
			return a.PeerID[18] == ' '
		}},
		{"EscapedPlusIsPlus", strings.Replace(base, "-TR3000-g2ox0s0ux8z7", "-TR3000-g2ox0s0ux8%2B7", 1), func(a *tracker.Announce, _ *announceOptions) bool {
			return a.PeerID[18] == '+'
		}},
		{"QBittorrentSubDelims", strings.Replace(base, "-TR3000-g2ox0s0ux8z7", "-qB4520-7b~PlD9.US7(", 1), func(a *tracker.Announce, _ *announceOptions) bool {
			return string(a.PeerID[:]) == "-qB4520-7b~PlD9.US7("
		}},
		{"BinaryPeerID", strings.Replace(base, "-TR3000-g2ox0s0ux8z7", "A2-1-36-0-%FE%85%8FX%E2%BC%7F%90%9D2", 1), func(a *tracker.Announce, _ *announceOptions) bool {
			return a.PeerID[10] == 0xfe && a.PeerID[19] == '2'
		}},
		{"AnyOrderAndUnknownParams", "corrupt=0&key=%8FX%E2%BC&left=0&supportcrypto=1&" + base[:strings.Index(base, "&left")] + "&trackerid=x&ipv6=%3A%3A1&redundant=0", func(a *tracker.Announce, _ *announceOptions) bool {
			return a.Left == 0 && a.Port == 51413
		}},
		{"Events", base + "&event=completed", func(a *tracker.Announce, _ *announceOptions) bool { return a.Event == bittorrent.Completed }},
		{"EmptyEventIsNone", base + "&event=", func(a *tracker.Announce, _ *announceOptions) bool { return a.Event == bittorrent.None }},
		{"Paused", base + "&event=paused", func(a *tracker.Announce, _ *announceOptions) bool { return a.Event == bittorrent.Paused }},
		{"NumWant", base + "&numwant=80", func(a *tracker.Announce, _ *announceOptions) bool { return a.NumWant == 80 }},
		{"NumWantZero", base + "&numwant=0", func(a *tracker.Announce, _ *announceOptions) bool { return a.NumWant == 0 }},
		{"NegativeNumWantIsDefault", base + "&numwant=-1", func(a *tracker.Announce, _ *announceOptions) bool { return a.NumWant == -1 }},
		{"HugeNumWant", base + "&numwant=99999999999", func(a *tracker.Announce, _ *announceOptions) bool { return a.NumWant == 1<<31-1 }},
		{"NotCompact", base + "&compact=0&no_peer_id=1", func(_ *tracker.Announce, o *announceOptions) bool { return !o.compact && o.noPeerID }},
		{"NotCompactEscaped", base + "&compact=%30&no_peer_id=%31", func(_ *tracker.Announce, o *announceOptions) bool { return !o.compact && o.noPeerID }},
		{"CompactLongValue", base + "&compact=%30%30&no_peer_id=1%31", func(_ *tracker.Announce, o *announceOptions) bool { return o.compact && !o.noPeerID }},
		{"MaxInt64Left", base[:strings.Index(base, "&left")] + "&left=9223372036854775807", func(a *tracker.Announce, _ *announceOptions) bool {
			return a.Left == 1<<63-1
		}},
		{"IPIgnoredByDefault", base + "&ip=192.0.2.7", func(_ *tracker.Announce, o *announceOptions) bool { return !o.ip.IsValid() }},
		{"EmptyPairs", "&&" + base + "&&", func(a *tracker.Announce, _ *announceOptions) bool { return a.Port == 51413 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a tracker.Announce
			var o announceOptions
			if err := parseAnnounce(tc.query, &a, &o, false); err != nil {
				t.Fatalf("parseAnnounce: %v", err)
			}
			if !tc.check(&a, &o) {
				t.Errorf("parsed %+v %+v", a, o)
			}
		})
	}
}

func TestParseAnnounceIP(t *testing.T) {
	var a tracker.Announce
	var o announceOptions
	for q, want := range map[string]string{
		"&ip=192.0.2.7":            "192.0.2.7",
		"&ip=%3A%3Affff%3A1.2.3.4": "1.2.3.4", // IPv4-mapped comes back as IPv4
		"&ip=2001%3Adb8%3A%3A1":    "2001:db8::1",
	} {
		if err := parseAnnounce(base+q, &a, &o, true); err != nil || o.ip != netip.MustParseAddr(want) {
			t.Errorf("%s: ip %v, %v; want %s", q, o.ip, err, want)
		}
	}
	for _, ip := range []string{"example.com", "0.0.0.0", "%3A%3A", "%3A%3A%250", "%3A%3Affff%3A0.0.0.0"} {
		if err := parseAnnounce(base+"&ip="+ip, &a, &o, true); err == nil {
			t.Errorf("ip=%s was taken for a peer's address", ip)
		}
	}
}

func TestParseAnnounceInvalid(t *testing.T) {
	without := func(key string) string {
		var kept []string
		for _, p := range strings.Split(base, "&") {
			if !strings.HasPrefix(p, key+"=") {
				kept = append(kept, p)
			}
		}
		return strings.Join(kept, "&")
	}
	replace := func(key, value string) string {
		return without(key) + "&" + key + "=" + value
	}
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"", "missing info_hash"},
		{without("info_hash"), "missing info_hash"},
		{without("peer_id"), "missing peer_id"},
		{without("port"), "missing port"},
		{without("uploaded"), "missing uploaded"},
		{without("downloaded"), "missing downloaded"},
		{without("left"), "missing left"},
		{replace("info_hash", "tooshort"), "info_hash must be 20 bytes"},
		{replace("info_hash", "aaaaaaaaaaaaaaaaaaaaa"), "info_hash must be 20 bytes"},
		{replace("info_hash", ""), "info_hash must be 20 bytes"},
		{replace("peer_id", "%41%42"), "peer_id must be 20 bytes"},
		{base + "&info_hash=" + ihAria2, "info_hash given more than once"},
		{replace("info_hash", "%zz"+strings.Repeat("a", 19)), "bad % escape"},
		{replace("peer_id", strings.Repeat("a", 19)+"%4"), "bad % escape"},
		{base + "&key=%G1", "bad % escape"},
		{base + "&compact=%G1", "bad % escape"},
		{base + "&no_peer_id=1%", "bad % escape"},
		{base + "&%zz=1", "bad escape in a parameter name"},
		{replace("port", "0"), "invalid port"},
		{replace("port", "65536"), "invalid port"},
		{replace("port", "-1"), "invalid port"},
		{replace("port", "http"), "invalid port"},
		{replace("port", ""), "invalid port"},
		{replace("uploaded", "-5"), "invalid uploaded"},
		{replace("downloaded", "1e3"), "invalid downloaded"},
		{replace("left", "9223372036854775808"), "invalid left"},
		{replace("left", "18446744073709551616"), "invalid left"},
		{base + "&event=complete", "unknown event"},
		{base + "&event=STARTED", "unknown event"},
		{base + "&numwant=many", "invalid numwant"},
		{base + "&numwant=-x", "invalid numwant"},
	} {
		var a tracker.Announce
		var o announceOptions
		err := parseAnnounce(tc.query, &a, &o, false)
		var ce bittorrent.ClientError
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.query, err, tc.want)
		} else if !asClientError(err, &ce) {
			t.Errorf("%q: %T is not a ClientError", tc.query, err)
		}
	}
}

func asClientError(err error, ce *bittorrent.ClientError) bool {
	c, ok := err.(bittorrent.ClientError)
	*ce = c
	return ok
}

func TestParseScrape(t *testing.T) {
	hashes, err := parseScrape("info_hash="+ihAria2+"&info_hash=aaaaaaaaaaaaaaaaaaaa&x=1", nil, 2)
	if err != nil || len(hashes) != 2 || string(hashes[0][:]) != ihRaw || string(hashes[1][:]) != "aaaaaaaaaaaaaaaaaaaa" {
		t.Fatalf("parseScrape = %q, %v", hashes, err)
	}
	for q, want := range map[string]string{
		strings.Repeat("info_hash="+strings.Repeat("a", 20)+"&", 3):                         "too many",
		"info_hash=" + strings.Repeat("a", 21):                                              "20 bytes",
		"info_hash=" + strings.Repeat("a", 20) + "&info_hash=%zz" + strings.Repeat("a", 18): "bad % escape",
	} {
		if _, err := parseScrape(q, nil, 2); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", q, err, want)
		}
	}
}
