package udp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	"github.com/golang/glog"
)

// The wire format of BEP 15; every number is big-endian.
//
//	request:  connection_id u64, action u32, transaction_id u32, body
//	answer:   action u32, transaction_id u32, body
//
// A connect carries protocolID as its connection_id and gets a 16-byte
// answer holding the connection ID. An announce body is 82 bytes (98 in
// all), then BEP 41 options; a scrape body is info_hashes, 20 bytes each.
const (
	protocolID = 0x41727101980

	actionConnect  = 0
	actionAnnounce = 1
	actionScrape   = 2
	actionError    = 3

	headerLen   = 16 // of a request
	answerLen   = 8  // action and transaction_id
	connectLen  = answerLen + 8
	announceLen = 98
	peersAt     = answerLen + 12 // interval, leechers, seeders, then peers
	scrapeEntry = 12             // seeders, completed, leechers

	// maxScrapeHashes is the most info_hashes one scrape may ask for: as
	// many as a request of a 1500-byte Ethernet frame's payload can carry
	// (16 + 74*20 = 1496 bytes; its answer, 8 + 74*12, is smaller).
	maxScrapeHashes = 74
	// maxPeers4 and maxPeers6 are the most peers an announce answer holds:
	// as many as fit in a datagram that needs no fragment on a 1500-byte
	// link, 1472 bytes of UDP payload over IPv4 and 1452 over IPv6.
	maxPeers4 = (1472 - 20) / bittorrent.PackedIPv4
	maxPeers6 = (1452 - 20) / bittorrent.PackedIPv6
	// maxPacket is the largest request read: a full scrape. Anything
	// longer is refused whole.
	maxPacket = headerLen + maxScrapeHashes*bittorrent.PeerIDSize
)

// The options of BEP 41, after an announce's 98 bytes.
const (
	optionEnd     = 0
	optionNOP     = 1
	optionURLData = 2
)

// Answers to clients. errBadConnectionID is the one error sent to an
// address that has not proven it receives at its source address, so it is
// short: it goes out only when it is no longer than the request it answers.
var (
	errBadConnectionID = bittorrent.ClientError("bad connection ID")
	errShortAnnounce   = bittorrent.ClientError("malformed announce: want 98 bytes")
	errBadOptions      = bittorrent.ClientError("malformed announce: truncated BEP 41 option")
	errMalformedScrape = bittorrent.ClientError("malformed scrape: want 20-byte info_hashes")
	errUnknownAction   = bittorrent.ClientError("unknown action")
	errNegative        = bittorrent.ClientError("invalid announce: downloaded, left and uploaded must not be negative")
)

// internalError is what a client is told of the tracker's own failures.
const internalError = "internal tracker error"

// rateLimited begins the error answer to a request over rate_limit; the
// minutes until the client's bucket allows one again follow.
const rateLimited = string(tracker.ErrRateLimited) + "; retry in "

// A worker answers packets, one at a time, for one reader goroutine. Its
// buffers are reused from packet to packet, so that a steady-state
// announce allocates nothing.
type worker struct {
	s      *Server
	cfg    *config.Config // the configuration ring was taken for
	ring   keyring
	ann    tracker.Announce
	resp   tracker.AnnounceResponse
	hashes []bittorrent.InfoHash
	files  []tracker.Scrape
	url    []byte // BEP 41 URL data, concatenated
	// passkeys interns the passkeys of private announces: the tracker
	// wants a string, and making one from the packet's bytes would
	// allocate at every announce.
	passkeys map[[bittorrent.PasskeyLen]byte]string
}

func newWorker(s *Server) *worker {
	return &worker{
		s:        s,
		hashes:   make([]bittorrent.InfoHash, 0, maxScrapeHashes),
		files:    make([]tracker.Scrape, 0, maxScrapeHashes),
		url:      make([]byte, 0, maxPacket),
		passkeys: make(map[[bittorrent.PasskeyLen]byte]string),
	}
}

// handle answers the packet p from src, received at now, by appending the
// answer to out[:0]. An empty answer means none at all: the packet is
// dropped.
//
// Nothing but a 16-byte connect answer, or an error about the connection
// ID no longer than the request itself, goes to an address that has not
// shown a valid connection ID: a forged source address gets no more bytes
// than it sent.
func (w *worker) handle(p []byte, src netip.AddrPort, now time.Time, out []byte) []byte {
	out = out[:0]
	st := w.s.stats
	if len(p) < headerLen || len(p) > maxPacket || !src.IsValid() {
		st.RecordUDP(stats.UDPDropped)
		return out
	}
	action, tx := binary.BigEndian.Uint32(p[8:]), p[12:16]
	cfg := w.s.tracker.Config()
	if cfg != w.cfg {
		w.cfg, w.ring = cfg, w.s.keys.forSecret(cfg.UDPSecret, bucketOf(now))
	}
	addr := src.Addr().Unmap().WithZone("")
	if action == actionConnect {
		if binary.BigEndian.Uint64(p) != protocolID {
			st.RecordUDP(stats.UDPDropped)
			return out
		}
		st.RecordUDP(stats.UDPConnect)
		out = append(out, 0, 0, 0, actionConnect)
		out = append(out, tx...)
		return binary.BigEndian.AppendUint64(out, w.ring.mint(addr, bucketOf(now)))
	}
	if !w.ring.valid(binary.BigEndian.Uint64(p), addr, bucketOf(now)) {
		st.RecordUDP(stats.UDPBadConnectionID)
		if len(p) < answerLen+len(errBadConnectionID) {
			st.RecordUDP(stats.UDPDropped)
			return out
		}
		return appendError(out, tx, string(errBadConnectionID), st)
	}

	if action == actionAnnounce || action == actionScrape {
		// After the connection ID: only an address that receives at its
		// source can spend its bucket, never a forger in its name.
		if ok, retry := w.s.tracker.Allow(addr, now); !ok {
			kind := stats.Announce
			if action == actionScrape {
				kind = stats.Scrape
			}
			out = appendError(out, tx, rateLimited, st)
			out = strconv.AppendInt(out, tracker.RetryMinutes(retry), 10)
			out = append(out, " min"...)
			st.RecordRequestVia(stats.UDP, kind, stats.Limited, time.Since(now))
			return out
		}
	}

	var kind stats.Kind
	var err error
	switch action {
	case actionAnnounce:
		kind = stats.Announce
		out, err = w.announce(cfg, p, addr, now, out)
	case actionScrape:
		kind = stats.Scrape
		out, err = w.scrape(p, out)
	default:
		kind, err = stats.Other, errUnknownAction
	}
	outcome := stats.OK
	if err != nil {
		var ce bittorrent.ClientError
		msg := internalError
		if errors.As(err, &ce) {
			outcome, msg = stats.ClientError, string(ce)
		} else {
			outcome = stats.ServerError
			glog.Errorf("udp: action %d from %v: %v", action, src, err)
		}
		out = appendError(out[:0], tx, msg, st)
	}
	st.RecordRequestVia(stats.UDP, kind, outcome, time.Since(now))
	if glog.V(3) {
		glog.Infof("udp: action %d from %v: %v", action, src, err)
	}
	return out
}

// appendError appends an error answer to out.
func appendError(out, tx []byte, msg string, st *stats.Stats) []byte {
	st.RecordUDP(stats.UDPError)
	out = append(out, 0, 0, 0, actionError)
	out = append(out, tx...)
	return append(out, msg...)
}

// announce answers the announce p from addr.
func (w *worker) announce(cfg *config.Config, p []byte, addr netip.Addr, now time.Time, out []byte) ([]byte, error) {
	if len(p) < announceLen {
		return out, errShortAnnounce
	}
	a := &w.ann
	*a = tracker.Announce{
		InfoHash:   bittorrent.InfoHash(p[16:36]),
		PeerID:     bittorrent.PeerID(p[36:56]),
		Addr:       addr,
		Downloaded: binary.BigEndian.Uint64(p[56:]),
		Left:       binary.BigEndian.Uint64(p[64:]),
		Uploaded:   binary.BigEndian.Uint64(p[72:]),
		Event:      bittorrent.Event(min(binary.BigEndian.Uint32(p[80:]), 0xff)),
		NumWant:    int(int32(binary.BigEndian.Uint32(p[92:]))),
		Port:       binary.BigEndian.Uint16(p[96:]),
		Time:       now,
	}
	// key (p[88:92]) names a client across address changes; the tracker
	// keys peers by peer_id, so it has no use for it.
	if a.Event > bittorrent.Stopped { // Paused is HTTP's alone
		return out, bittorrent.ErrUnknownEvent
	}
	if (a.Downloaded|a.Left|a.Uploaded)>>63 != 0 {
		return out, errNegative
	}
	if a.NumWant < 0 {
		a.NumWant = cfg.DefaultNumWant
	}
	// An answer must fit in one unfragmented datagram on a 1500-byte link
	// (networks often drop fragments): 1472 bytes of payload over IPv4,
	// 1452 over IPv6, less the 20-byte header.
	if addr.Is6() {
		a.NumWant = min(a.NumWant, maxPeers6)
	} else {
		a.NumWant = min(a.NumWant, maxPeers4)
	}
	if ip := [4]byte(p[84:88]); ip != [4]byte{} && cfg.AllowIPSpoofing {
		a.Addr = netip.AddrFrom4(ip)
	}
	url, err := w.options(p[announceLen:])
	if err != nil {
		return out, err
	}
	if cfg.Private {
		if a.Passkey, err = w.passkey(url); err != nil {
			return out, err
		}
	}
	if err := w.s.tracker.Announce(context.Background(), a, &w.resp); err != nil {
		return out, err
	}
	// The answer's peers are of the family the request came over: BEP 15
	// has no room for both.
	peers := w.resp.Peers4
	if addr.Is6() {
		peers = w.resp.Peers6
	}
	out = append(out, 0, 0, 0, actionAnnounce)
	out = append(out, p[12:16]...)
	out = binary.BigEndian.AppendUint32(out, uint32(w.resp.Interval/time.Second))
	out = binary.BigEndian.AppendUint32(out, uint32(w.resp.Incomplete))
	out = binary.BigEndian.AppendUint32(out, uint32(w.resp.Complete))
	return append(out, peers...), nil
}

// options reads the BEP 41 options of an announce and returns their URL
// data, the parts concatenated. Unknown options are skipped by their
// length.
func (w *worker) options(opt []byte) ([]byte, error) {
	url := w.url[:0]
	for i := 0; i < len(opt); {
		switch opt[i] {
		case optionEnd:
			return url, nil
		case optionNOP:
			i++
			continue
		}
		if i+1 >= len(opt) || i+2+int(opt[i+1]) > len(opt) {
			return url, errBadOptions
		}
		data := opt[i+2 : i+2+int(opt[i+1])]
		if opt[i] == optionURLData {
			url = append(url, data...)
		}
		i += 2 + len(data)
	}
	return url, nil
}

// passkey finds the passkey in an announce's URL data, which must be
// /<passkey>/announce, perhaps followed by a query.
func (w *worker) passkey(url []byte) (string, error) {
	if i := bytes.IndexByte(url, '?'); i >= 0 {
		url = url[:i]
	}
	const suffix = "/announce"
	n := 1 + bittorrent.PasskeyLen
	if len(url) != n+len(suffix) || url[0] != '/' || string(url[n:]) != suffix {
		return "", tracker.ErrMalformedAnnounce
	}
	pk := [bittorrent.PasskeyLen]byte(url[1:n])
	s, ok := w.passkeys[pk]
	if !ok {
		if len(w.passkeys) >= maxPasskeys {
			clear(w.passkeys)
		}
		s = string(pk[:])
		w.passkeys[pk] = s
	}
	return s, nil
}

// maxPasskeys bounds a worker's interned passkeys, which a stream of
// made-up passkeys would otherwise grow without end.
const maxPasskeys = 1 << 14

// scrape answers the scrape p: each info_hash's figures, in the order
// asked.
func (w *worker) scrape(p []byte, out []byte) ([]byte, error) {
	body := p[headerLen:]
	if len(body)%bittorrent.PeerIDSize != 0 {
		return out, errMalformedScrape
	}
	w.hashes = w.hashes[:0]
	for i := 0; i < len(body); i += bittorrent.PeerIDSize {
		w.hashes = append(w.hashes, bittorrent.InfoHash(body[i:i+bittorrent.PeerIDSize]))
	}
	// A scrape carries no options (its length is its hashes), so a private
	// tracker's scrape has no passkey and is refused as the tracker says.
	var err error
	w.files, err = w.s.tracker.Scrape(context.Background(), "", w.hashes, w.files[:0])
	if err != nil {
		return out, err
	}
	out = append(out, 0, 0, 0, actionScrape)
	out = append(out, p[12:16]...)
	for i := range w.files {
		f := &w.files[i]
		out = binary.BigEndian.AppendUint32(out, uint32(f.Complete))
		out = binary.BigEndian.AppendUint32(out, uint32(f.Downloaded))
		out = binary.BigEndian.AppendUint32(out, uint32(f.Incomplete))
	}
	return out, nil
}
