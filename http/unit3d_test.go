package http

import (
	"strings"
	"testing"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// UNIT3D-Announce's query parser (unit3d.md §4.2): its pairing of '=' and
// '&', its decoding and its messages, first bad parameter first.
func TestParseUnit3d(t *testing.T) {
	hash := strings.Repeat("%41", 20)
	id := "-qB4650-" + strings.Repeat("x", 12)
	base := "info_hash=" + hash + "&peer_id=" + id + "&port=6881&uploaded=1&downloaded=2&left=3"
	for _, tc := range []struct {
		query, msg string
	}{
		{base, ""},
		{base + "&compact=1&event=started&numwant=+5&corrupt=x&key=K%20", ""},
		{"", "Query parameter 'info_hash' is missing."},
		{"info_hash=" + hash, "Query parameter 'peer_id' is missing."},
		{"info_hash=" + hash + "&peer_id=" + id, "Query parameter 'port' is missing."},
		{"info_hash=" + hash + "&peer_id=" + id + "&port=1", "Query parameter 'uploaded' is missing."},
		{"info_hash=" + hash + "&peer_id=" + id + "&port=1&uploaded=0", "Query parameter 'downloaded' is missing."},
		{"info_hash=" + hash + "&peer_id=" + id + "&port=1&uploaded=0&downloaded=0", "Query parameter 'left' is missing."},
		{"a=1&flag&" + base, "Invalid query string value."},
		{"&&" + base, "Invalid query string value."},
		{"a=1=2&" + base, "Invalid query string parameter."},
		{base + "&flag", ""},  // segments after the last '=' are ignored
		{base + "&a=1=2", ""}, // the last value may hold '='
		{"info_hash=" + hash[:57] + "&peer_id=" + id, "Invalid 'info_hash'."},
		{"info_hash=" + strings.Replace(hash, "%41", "%4G", 1), "Invalid 'info_hash'."},
		{"info_hash=" + hash + "&peer_id=" + id + "x", "Invalid 'peer_id'."},
		{base + "&port=65536", "Invalid 'port' (must be greater than or equal to 0)."},
		{"port=-1&" + base, "Invalid 'port' (must be greater than or equal to 0)."},
		{base + "&uploaded=", "Invalid 'uploaded' (must be greater than or equal to 0)."},
		{base + "&downloaded=1.5", "Invalid 'downloaded' (must be greater than or equal to 0)."},
		{base + "&left=18446744073709551616", "Invalid 'left' (must be greater than or equal to 0)."},
		{base + "&numwant=-1", "Invalid 'numwant' (must be greater than or equal to 0)."},
		{base + "&compact=0", "Your client does not support compact announces."},
		{base + "&event=bogus", "Unsupported 'event' type."},
		{"compact=0&info_hash=x", "Your client does not support compact announces."}, // query order
		{"INFO_HASH=" + hash + "&peer_id=" + id, "Query parameter 'info_hash' is missing."},
	} {
		var a backend.AnnounceRequest
		if _, msg := parseUnit3d(tc.query, &a); msg != tc.msg {
			t.Errorf("parseUnit3d(%q) = %q, want %q", tc.query, msg, tc.msg)
		}
	}
	var a backend.AnnounceRequest
	port, _ := parseUnit3d("info_hash=++++++++++++++++++%2b%2B&peer_id="+id+"&port=+6881&uploaded=1&downloaded=2&left=3&event=paused&key=a%20b&numwant=7&event=stopped", &a)
	if a.InfoHash != bittorrent.InfoHash([]byte(strings.Repeat("+", 20))) || port != 6881 || a.Event != bittorrent.Stopped || a.Key != "a%20b" || a.NumWant != 7 {
		t.Errorf("parsed %+v, port %d", a, port)
	}
}

// The reply layouts of unit3d.md §4.7, byte for byte.
func TestAppendUnit3d(t *testing.T) {
	for _, tc := range []struct {
		r    backend.AnnounceReply
		want string
	}{
		{backend.AnnounceReply{Complete: 2, Downloaded: 5, Incomplete: 1, Interval: 2400e9, MinInterval: 1800e9, Peers4: []byte("\xC6\x33\x64\x0B\x1A\xE1")},
			"d8:completei2e10:downloadedi5e10:incompletei1e8:intervali2400e12:min intervali1800e5:peers6:\xC6\x33\x64\x0B\x1A\xE1e"},
		{backend.AnnounceReply{Interval: 2400e9, MinInterval: 1800e9, Peers6: []byte("0123456789abcdef\x1a\xe1")},
			"d8:completei0e10:downloadedi0e10:incompletei0e8:intervali2400e12:min intervali1800e5:peers0:6:peers618:0123456789abcdef\x1a\xe1e"},
		{backend.AnnounceReply{Downloaded: 3, Interval: 2400e9, MinInterval: 1800e9, Warning: "Download slot limit reached"},
			"d8:completei0e10:downloadedi3e10:incompletei0e8:intervali2400e12:min intervali1800e5:peers0:15:warning message27:Download slot limit reachede"},
		{backend.AnnounceReply{Interval: 30e9, MinInterval: 30e9, Warning: "Torrent is pending moderation."},
			"d8:completei0e10:downloadedi0e10:incompletei0e8:intervali30e12:min intervali30e5:peers0:15:warning message30:Torrent is pending moderation.e"},
	} {
		if got := string(appendUnit3d(nil, &tc.r)); got != tc.want {
			t.Errorf("appendUnit3d = %q, want %q", got, tc.want)
		}
	}
	if got, want := string(appendUnit3dFailure(nil, "InfoHash not found.")), "d14:failure reason19:InfoHash not found.8:intervali5400e12:min intervali5400ee"; got != want {
		t.Errorf("appendUnit3dFailure = %q, want %q", got, want)
	}
}

// FuzzParseUnit3d: any query is parsed without a panic, and one that
// parses has every required parameter.
func FuzzParseUnit3d(f *testing.F) {
	hash := strings.Repeat("%41", 20)
	for _, q := range []string{
		"info_hash=" + hash + "&peer_id=-qB4650-xxxxxxxxxxxx&port=6881&uploaded=1&downloaded=2&left=3&compact=1",
		"info_hash=" + strings.Repeat("a", 20) + "%4",  // an escape cut short
		"info_hash=" + strings.Repeat("a", 21) + "%41", // 21 bytes
		"a=1&flag&b=2", "a=1=2&b=3", "&&=", "==&&", "%", "info_hash=%%41",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		var a backend.AnnounceRequest
		if _, msg := parseUnit3d(q, &a); msg == "" {
			for _, k := range []string{"info_hash=", "peer_id=", "port=", "uploaded=", "downloaded=", "left="} {
				if !strings.Contains(q, k) {
					t.Fatalf("%q parsed without %s", q, k)
				}
			}
		}
	})
}
