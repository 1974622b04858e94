// Package bittorrent holds the protocol's words that every other package
// shares: info_hashes, peer_ids, announce events, the sizes of packed
// peers, the errors a client is told, and what an announce did to its
// swarm. It imports nothing of the project, so the tracker, its stores,
// its frontends, the backends and the statistics all speak in the same
// types: an event is an Event everywhere, never a string compared by hand.
package bittorrent

import (
	"encoding/hex"
	"errors"
)

// InfoHash identifies a torrent: the 20-byte SHA-1 of its info dictionary.
type InfoHash [20]byte

// String returns the info_hash in lower-case hex.
func (h InfoHash) String() string { return hex.EncodeToString(h[:]) }

// ParseInfoHash reads an info_hash written as 40 hex digits, in either case.
func ParseInfoHash(s string) (InfoHash, error) {
	var h InfoHash
	if len(s) != 2*len(h) {
		return h, errInfoHashHex
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, errInfoHashHex
	}
	return h, nil
}

var errInfoHashHex = errors.New("an info_hash is 40 hex digits")

// PeerID is the 20 bytes a client chooses to name itself in one swarm.
type PeerID [20]byte

// Event is what an announce reports besides "I am still here".
type Event uint8

// The announce events of BEP 3 and BEP 21. None is a regular announce.
// Their values are BEP 15's (UDP announces carry them as numbers) up to
// Stopped; Paused, which only HTTP can say, follows.
const (
	None Event = iota
	Completed
	Started
	Stopped
	Paused
)

var eventNames = [...]string{None: "", Started: "started", Stopped: "stopped", Completed: "completed", Paused: "paused"}

// String returns the event as clients spell it ("" for None).
func (e Event) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return "invalid"
}

// ParseEvent reads an event as clients send it; the empty string is None.
func ParseEvent(s string) (Event, error) {
	for e, name := range eventNames {
		if s == name {
			return Event(e), nil
		}
	}
	return 0, ErrUnknownEvent
}

// ClientError is a problem with the request itself. Its text is meant for
// the client: the HTTP frontend sends it as the "failure reason", the UDP
// frontend as an error packet's message.
type ClientError string

func (e ClientError) Error() string { return string(e) }

// ErrUnknownEvent is the answer to an event no BEP defines.
var ErrUnknownEvent = ClientError("unknown event")

// Sizes on the wire and in the stores.
const (
	// PackedIPv4 and PackedIPv6 are the sizes of a peer in compact form
	// (BEP 23, BEP 7): the address, then the port, big-endian.
	PackedIPv4 = 4 + 2
	PackedIPv6 = 16 + 2
	// PeerIDSize is the size of a peer_id (and of an info_hash).
	PeerIDSize = len(PeerID{})
	// PasskeyLen is the length of a private tracker's passkey: Gazelle's
	// and UNIT3D's are both 32 characters. Gazelle's tracker and report
	// secrets have the same length.
	PasskeyLen = 32
)

// Change says what an announce did to its swarm, as the store saw it: the
// tracker's statistics count joins, departures and completions from it.
type Change uint8

// The bits of a Change.
const (
	PeerAdded    Change = 1 << iota // a new peer joined the swarm
	PeerRemoved                     // the peer left (event=stopped)
	SeederBefore                    // the peer was a seeder before the announce
	SeederAfter                     // the peer is a seeder after the announce
	Snatched                        // the announce counted a completed download
	SwarmAdded                      // the announce created the swarm
	SwarmRemoved                    // the announce removed the swarm's last peer and the swarm
)

// Has reports whether every bit of b is set in c.
func (c Change) Has(b Change) bool { return c&b == b }
