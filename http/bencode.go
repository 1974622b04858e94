package http

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"time"

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
		n4 := 0
		for i := range r.Peers {
			if r.Peers[i].Addr.Addr().Is4() {
				n4++
			}
		}
		b = appendCompact(b, r.Peers, n4, true)
		if n6 := len(r.Peers) - n4; n6 > 0 {
			b = appendStr(b, "peers6")
			b = appendCompact(b, r.Peers, n6, false)
		}
	} else {
		b = append(b, 'l')
		for i := range r.Peers {
			p := &r.Peers[i]
			b = append(b, 'd')
			b = appendStr(b, "ip")
			b = appendAddr(b, p)
			if !opt.noPeerID {
				b = appendStr(b, "peer id")
				b = appendBytes(b, p.ID[:])
			}
			b = appendInt(b, "port", int64(p.Addr.Port()))
			b = append(b, 'e')
		}
		b = append(b, 'e')
	}
	return append(b, 'e')
}

// appendCompact writes the n peers of one family as one string of
// address-and-port entries, 6 bytes each for IPv4, 18 for IPv6.
func appendCompact(b []byte, peers []tracker.Peer, n int, v4 bool) []byte {
	size := 18
	if v4 {
		size = 6
	}
	b = strconv.AppendInt(b, int64(n*size), 10)
	b = append(b, ':')
	for i := range peers {
		a := peers[i].Addr.Addr()
		if a.Is4() != v4 {
			continue
		}
		if v4 {
			ip := a.As4()
			b = append(b, ip[:]...)
		} else {
			ip := a.As16()
			b = append(b, ip[:]...)
		}
		port := peers[i].Addr.Port()
		b = append(b, byte(port>>8), byte(port))
	}
	return b
}

// appendAddr writes a peer's address as text, as a bencoded string.
func appendAddr(b []byte, p *tracker.Peer) []byte {
	var buf [64]byte
	return appendBytes(b, p.Addr.Addr().AppendTo(buf[:0]))
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
