package http

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
)

// strictDecode decodes one bencoded value that fills b, refusing anything
// BEP 3 does not allow or leaves ambiguous: integers with leading zeros
// or "-0", string lengths with leading zeros, dictionary keys out of
// raw-byte order or repeated, truncated values and trailing bytes.
// Integers are int64, strings string, lists []any and dictionaries
// map[string]any.
func strictDecode(b []byte) (any, error) {
	d := &decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, fmt.Errorf("at byte %d: %w", d.i, err)
	}
	if d.i != len(b) {
		return nil, fmt.Errorf("%d bytes after the value", len(b)-d.i)
	}
	return v, nil
}

type decoder struct {
	b []byte
	i int
}

var errTruncated = errors.New("truncated")

func (d *decoder) value(depth int) (any, error) {
	if d.i >= len(d.b) {
		return nil, errTruncated
	}
	if depth > 64 {
		return nil, errors.New("nested too deep")
	}
	switch c := d.b[d.i]; {
	case c == 'i':
		d.i++
		n, err := d.number('e', true)
		return n, err
	case c == 'l':
		d.i++
		list := []any{}
		for {
			if d.i >= len(d.b) {
				return nil, errTruncated
			}
			if d.b[d.i] == 'e' {
				d.i++
				return list, nil
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	case c == 'd':
		d.i++
		dict := map[string]any{}
		var prev *string
		for {
			if d.i >= len(d.b) {
				return nil, errTruncated
			}
			if d.b[d.i] == 'e' {
				d.i++
				return dict, nil
			}
			if c := d.b[d.i]; c < '0' || c > '9' {
				return nil, fmt.Errorf("dictionary key is not a string (%q)", c)
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			if prev != nil && *prev >= k {
				return nil, fmt.Errorf("key %q after %q: not in raw-byte order", k, *prev)
			}
			prev = &k
			if dict[k], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
	case '0' <= c && c <= '9':
		return d.str()
	default:
		return nil, fmt.Errorf("unexpected %q", c)
	}
}

// number reads a decimal integer up to end: no leading zeros, and no
// sign unless signed (and never "-0").
func (d *decoder) number(end byte, signed bool) (int64, error) {
	j := bytes.IndexByte(d.b[d.i:], end)
	if j < 0 {
		return 0, errTruncated
	}
	text := string(d.b[d.i : d.i+j])
	digits := text
	if signed && len(text) > 0 && text[0] == '-' {
		digits = text[1:]
		if digits == "0" {
			return 0, errors.New("-0")
		}
	}
	if digits == "" || (digits[0] == '0' && len(digits) > 1) {
		return 0, fmt.Errorf("integer %q: empty or with a leading zero", text)
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("integer %q: not a number", text)
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, err
	}
	d.i += j + 1
	return n, nil
}

func (d *decoder) str() (string, error) {
	n, err := d.number(':', false)
	if err != nil {
		return "", err
	}
	if int64(len(d.b)-d.i) < n {
		return "", errTruncated
	}
	s := string(d.b[d.i : d.i+int(n)])
	d.i += int(n)
	return s, nil
}

func TestStrictDecode(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"i0e", true}, {"i-7e", true}, {"i-0e", false}, {"i07e", false}, {"ie", false}, {"i1", false},
		{"i9223372036854775807e", true}, {"i9223372036854775808e", false},
		{"0:", true}, {"3:abc", true}, {"03:abc", false}, {"4:abc", false}, {"-1:a", false},
		{"le", true}, {"li1e3:abce", true}, {"l", false},
		{"de", true}, {"d1:ai1e1:bi2ee", true}, {"d1:bi2e1:ai1ee", false}, {"d1:ai1e1:ai2ee", false},
		{"di1ei2ee", false}, {"d1:ae", false}, {"i1ei2e", false}, {"", false}, {"x", false},
	} {
		if _, err := strictDecode([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("%q: error %v, want ok = %v", tc.in, err, tc.ok)
		}
	}
}

// FuzzBencode writes announce, scrape and failure answers from fuzzed
// figures, peers and text, decodes them with strictDecode and checks
// that they say what was written. The seed corpus is in
// testdata/fuzz/FuzzBencode.
func FuzzBencode(f *testing.F) {
	f.Fuzz(func(t *testing.T, complete, incomplete, downloaded int64, interval uint32, peers4, peers6, ids []byte,
		compact, noPeerID bool, external []byte, reason string, hashes []byte, retry int64) {
		// Announce.
		peers4 = peers4[:len(peers4)/bittorrent.PackedIPv4*bittorrent.PackedIPv4]
		peers6 = peers6[:len(peers6)/bittorrent.PackedIPv6*bittorrent.PackedIPv6]
		n4, n6 := len(peers4)/bittorrent.PackedIPv4, len(peers6)/bittorrent.PackedIPv6
		var ids4, ids6 []byte
		if len(ids) >= (n4+n6)*bittorrent.PeerIDSize {
			ids4, ids6 = ids[:n4*bittorrent.PeerIDSize], ids[n4*bittorrent.PeerIDSize:(n4+n6)*bittorrent.PeerIDSize]
		}
		ext := netip.AddrFrom4([4]byte{192, 0, 2, 1})
		if len(external) >= 16 {
			ext = netip.AddrFrom16([16]byte(external[:16])).Unmap()
		} else if len(external) >= 4 {
			ext = netip.AddrFrom4([4]byte(external[:4]))
		}
		resp := &tracker.AnnounceResponse{
			Interval:    time.Duration(interval) * time.Second,
			MinInterval: time.Duration(interval/2) * time.Second,
			Counts:      tracker.Counts{Complete: int(complete), Incomplete: int(incomplete), Downloaded: int(downloaded)},
			Peers4:      peers4, Peers6: peers6, IDs4: ids4, IDs6: ids6,
		}
		out := appendAnnounce(nil, resp, &announceOptions{compact: compact, noPeerID: noPeerID}, ext)
		m := decodeDict(t, out)
		extBytes := ext.AsSlice()
		for key, want := range map[string]any{
			"complete": complete, "incomplete": incomplete, "downloaded": downloaded,
			"interval": int64(interval), "min interval": int64(interval / 2), "external ip": string(extBytes),
		} {
			if m[key] != want {
				t.Fatalf("%q: %s = %v, want %v", out, key, m[key], want)
			}
		}
		if compact {
			if m["peers"] != string(peers4) {
				t.Fatalf("%q: peers %q, want %q", out, m["peers"], peers4)
			}
			if p6, ok := m["peers6"]; ok != (n6 > 0) || ok && p6 != string(peers6) {
				t.Fatalf("%q: peers6 %q (present %v), want %q", out, p6, ok, peers6)
			}
		} else {
			checkPeerDicts(t, out, m["peers"], peers4, peers6, ids4, ids6, noPeerID)
		}

		// Scrape: a hash's figures follow from the hash, as the store's do,
		// so that a repeated hash is the same file.
		var files []tracker.Scrape
		for len(hashes) >= 20 {
			h := bittorrent.InfoHash(hashes[:20])
			files = append(files, tracker.Scrape{InfoHash: h, Counts: tracker.Counts{Complete: int(h[0]), Incomplete: int(h[1]) - 128, Downloaded: int(h[2]) << 40}})
			hashes = hashes[20:]
		}
		out = appendScrape(nil, files, time.Duration(interval)*time.Second)
		m = decodeDict(t, out)
		got, ok := m["files"].(map[string]any)
		if !ok || len(m) != 2 {
			t.Fatalf("%q: want files and flags", out)
		}
		unique := map[string]bool{}
		for _, f := range files {
			unique[string(f.InfoHash[:])] = true
			want := map[string]any{"complete": int64(f.Complete), "incomplete": int64(f.Incomplete), "downloaded": int64(f.Downloaded)}
			if g, ok := got[string(f.InfoHash[:])].(map[string]any); !ok || !equal(g, want) {
				t.Fatalf("%q: file %x = %v, want %v", out, f.InfoHash, g, want)
			}
		}
		if len(got) != len(unique) {
			t.Fatalf("%q: %d files, want %d", out, len(got), len(unique))
		}
		if flags, _ := m["flags"].(map[string]any); len(flags) != 1 || flags["min_request_interval"] != int64(interval) {
			t.Fatalf("%q: flags %v", out, m["flags"])
		}

		// Failures, with and without retry in.
		out = appendFailure(nil, reason)
		if m = decodeDict(t, out); len(m) != 1 || m["failure reason"] != reason {
			t.Fatalf("%q: want the failure reason %q alone", out, reason)
		}
		out = appendRetry(nil, reason, time.Duration(retry))
		m = decodeDict(t, out)
		minutes, _ := m["retry in"].(int64)
		if len(m) != 2 || m["failure reason"] != reason || minutes < 1 || retry > 0 && time.Duration(minutes)*time.Minute < time.Duration(retry) {
			t.Fatalf("%q: want the failure reason %q and a retry in of at least 1 and %v", out, reason, time.Duration(retry))
		}
	})
}

// decodeDict strictly decodes a dictionary.
func decodeDict(t *testing.T, b []byte) map[string]any {
	t.Helper()
	v, err := strictDecode(b)
	if err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%q: not a dictionary", b)
	}
	return m
}

// checkPeerDicts checks BEP 3's list of peer dictionaries against the
// packed peers it was written from.
func checkPeerDicts(t *testing.T, out []byte, v any, peers4, peers6, ids4, ids6 []byte, noPeerID bool) {
	t.Helper()
	list, ok := v.([]any)
	n4, n6 := len(peers4)/bittorrent.PackedIPv4, len(peers6)/bittorrent.PackedIPv6
	if !ok || len(list) != n4+n6 {
		t.Fatalf("%q: peers %v, want a list of %d", out, v, n4+n6)
	}
	for i, p := range list {
		d, _ := p.(map[string]any)
		packed, size, ids, j := peers4, bittorrent.PackedIPv4, ids4, i
		if i >= n4 {
			packed, size, ids, j = peers6, bittorrent.PackedIPv6, ids6, i-n4
		}
		e := packed[j*size : (j+1)*size]
		ip, err := netip.ParseAddr(fmt.Sprint(d["ip"]))
		if err != nil || !bytes.Equal(ip.AsSlice(), e[:size-2]) {
			t.Fatalf("%q: peer %d ip %v, want %x", out, i, d["ip"], e[:size-2])
		}
		if d["port"] != int64(e[size-2])<<8|int64(e[size-1]) {
			t.Fatalf("%q: peer %d port %v", out, i, d["port"])
		}
		id, hasID := d["peer id"]
		if wantID := !noPeerID && len(ids) > 0; hasID != wantID || hasID && id != string(ids[j*20:(j+1)*20]) {
			t.Fatalf("%q: peer %d peer id %q (present %v)", out, i, id, hasID)
		}
	}
}
