package http

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
)

// The tracker's answers have a handful of fixed shapes, so they are written
// by hand into a reused buffer: no reflection, no allocation, and every
// dictionary's keys in the raw-byte order BEP 3 requires, which the order of
// the code below spells out.

func appendStr(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendInt(b []byte, key string, n int64) []byte {
	b = appendStr(b, key)
	b = append(b, 'i')
	b = strconv.AppendInt(b, n, 10)
	return append(b, 'e')
}

// appendFailure writes a failure answer.
func appendFailure(b []byte, reason string) []byte {
	b = append(b, 'd')
	b = appendStr(b, "failure reason")
	b = appendStr(b, reason)
	return append(b, 'e')
}

// appendRetry writes a failure answer with BEP 31's "retry in": retry in
// whole minutes, rounded up, and at least one.
func appendRetry(b []byte, reason string, retry time.Duration) []byte {
	b = append(b, 'd')
	b = appendStr(b, "failure reason")
	b = appendStr(b, reason)
	b = appendInt(b, "retry in", tracker.RetryMinutes(retry))
	return append(b, 'e')
}

// appendAnnounce writes an announce answer, compact (BEP 23, with IPv6 peers
// in "peers6" as BEP 7 has it) or as a list of dictionaries. external is the
// announcer's address as the tracker sees it (BEP 24).
func appendAnnounce(b []byte, r *tracker.AnnounceResponse, opt *announceOptions, external netip.Addr) []byte {
	b = append(b, 'd')
	b = appendInt(b, "complete", int64(r.Complete))
	b = appendInt(b, "downloaded", int64(r.Downloaded))
	b = appendStr(b, "external ip")
	if external.Is4() {
		ip := external.As4()
		b = appendBytes(b, ip[:])
	} else {
		ip := external.As16()
		b = appendBytes(b, ip[:])
	}
	b = appendInt(b, "incomplete", int64(r.Incomplete))
	b = appendInt(b, "interval", int64(r.Interval/time.Second))
	b = appendInt(b, "min interval", int64(r.MinInterval/time.Second))
	b = appendStr(b, "peers")
	if opt.compact {
		b = appendBytes(b, r.Peers4)
		if len(r.Peers6) > 0 {
			b = appendStr(b, "peers6")
			b = appendBytes(b, r.Peers6)
		}
		return append(b, 'e')
	}
	b = append(b, 'l')
	b = appendPeerDicts(b, r.Peers4, r.IDs4, bittorrent.PackedIPv4, opt.noPeerID)
	b = appendPeerDicts(b, r.Peers6, r.IDs6, bittorrent.PackedIPv6, opt.noPeerID)
	b = append(b, 'e')
	return append(b, 'e')
}

// appendPeerDicts writes packed peers (entries of size bytes) in BEP 3's
// dictionary model: ip as text, peer id unless noPeerID, port.
func appendPeerDicts(b, packed, ids []byte, size int, noPeerID bool) []byte {
	var text [64]byte
	for i, n := 0, 0; i+size <= len(packed); i, n = i+size, n+bittorrent.PeerIDSize {
		e := packed[i : i+size]
		var ip netip.Addr
		if size == bittorrent.PackedIPv4 {
			ip = netip.AddrFrom4([4]byte(e))
		} else {
			ip = netip.AddrFrom16([16]byte(e))
		}
		b = append(b, 'd')
		b = appendStr(b, "ip")
		b = appendBytes(b, ip.AppendTo(text[:0]))
		if !noPeerID && n+bittorrent.PeerIDSize <= len(ids) {
			b = appendStr(b, "peer id")
			b = appendBytes(b, ids[n:n+bittorrent.PeerIDSize])
		}
		b = appendInt(b, "port", int64(e[size-2])<<8|int64(e[size-1]))
		b = append(b, 'e')
	}
	return b
}

// appendScrape writes a scrape answer. files is sorted in place, as its
// keys must be, and repeated hashes are written once.
func appendScrape(b []byte, files []tracker.Scrape, minInterval time.Duration) []byte {
	slices.SortFunc(files, func(x, y tracker.Scrape) int { return bytes.Compare(x.InfoHash[:], y.InfoHash[:]) })
	b = append(b, 'd')
	b = appendStr(b, "files")
	b = append(b, 'd')
	for i := range files {
		f := &files[i]
		if i > 0 && files[i-1].InfoHash == f.InfoHash {
			continue
		}
		b = appendBytes(b, f.InfoHash[:])
		b = append(b, 'd')
		b = appendInt(b, "complete", int64(f.Complete))
		b = appendInt(b, "downloaded", int64(f.Downloaded))
		b = appendInt(b, "incomplete", int64(f.Incomplete))
		b = append(b, 'e')
	}
	b = append(b, 'e')
	b = appendStr(b, "flags")
	b = append(b, 'd')
	b = appendInt(b, "min_request_interval", int64(minInterval/time.Second))
	b = append(b, 'e')
	return append(b, 'e')
}
