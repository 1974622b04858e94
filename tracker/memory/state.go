package memory

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/internal/atomicfile"
	"github.com/chihaya/chihaya/tracker"
	"github.com/golang/glog"
)

// The state file ("state_file") holds every swarm of a store across a
// restart: written on Close and every state_interval, loaded by Open.
// Everything is little-endian:
//
//	header (stateHeaderLen bytes)
//	  magic      "CHYSTATE"
//	  version    u32 (stateVersion)
//	  layout     6 bytes: idLen, ipv4Len, ipv6Len, portLen, seenLen, uidLen
//	  private    u8: 1 if the records carry a user id
//	  reserved   u8
//	  epoch      i64: Unix nanoseconds; a record's last announce counts
//	             seconds from it
//	  written    i64: Unix nanoseconds
//	swarms, one after another, each
//	  info_hash  20 bytes
//	  downloaded u32
//	  n4, seeders4, n6, seeders6  u32 each
//	  records    n4 IPv4 records, then n6 IPv6 ones, seeders first, as
//	             the store keeps them (see peerList), flags included
//	trailer (stateTrailerLen bytes)
//	  magic      "CHYSTEND"
//	  swarms     u64
//	  peers      u64: records
//	  checksum   u32: CRC-32C of every byte before it
//
// So the file is about the records' size: 30 bytes a public IPv4 peer,
// plus 40 bytes a swarm.
//
// The records are the store's own bytes, copied out under the shard's
// lock in one pass (a shard of a million-peer store holds a few thousand
// records: tens of microseconds) and written to the file with no lock
// held. Loading reads and checks the whole file before it builds
// anything, and builds a new store, so that a bad file leaves nothing
// half-loaded: the tracker starts empty and logs why.
const (
	stateMagic      = "CHYSTATE"
	stateEndMagic   = "CHYSTEND"
	stateVersion    = 1
	stateHeaderLen  = 8 + 4 + 6 + 2 + 8 + 8
	stateTrailerLen = 8 + 8 + 8 + 4
	swarmHeaderLen  = idLen + 5*4
)

// stateLayout is the record layout of this build, as the header holds it.
var stateLayout = [6]byte{byte(idLen), byte(ipv4Len), byte(ipv6Len), byte(portLen), byte(seenLen), byte(uidLen)}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errStateRefused wraps every reason a state file is not loaded.
var errStateRefused = errors.New("not loaded")

// Save writes every swarm to the state file, atomically: a crash while
// writing leaves the previous file. It holds each shard's lock only while
// it copies that shard's records. Saves do not overlap: a second waits
// for the first.
func (s *Store) Save() error {
	if s.p.StateFile == "" {
		return nil
	}
	s.saving.Lock()
	defer s.saving.Unlock()
	start := time.Now()
	var swarms, peers uint64
	size := 0
	err := atomicfile.Write(s.p.StateFile, 0o600, func(w io.Writer) error {
		var err error
		swarms, peers, size, err = s.writeState(w, time.Now())
		return err
	})
	if err != nil {
		return fmt.Errorf("tracker/memory: writing state_file %s: %w", s.p.StateFile, err)
	}
	glog.Infof("state_file: wrote %d swarms, %d peers (%d bytes) to %s in %v", swarms, peers, size, s.p.StateFile, time.Since(start).Round(time.Millisecond))
	return nil
}

// checksummed is a writer that keeps the CRC of what went through it.
type checksummed struct {
	w   io.Writer
	crc hash.Hash32
	n   int
}

func (c *checksummed) Write(p []byte) (int, error) {
	c.crc.Write(p)
	c.n += len(p)
	return c.w.Write(p)
}

// writeState writes the store's state to w, as of now.
func (s *Store) writeState(w io.Writer, now time.Time) (swarms, peers uint64, size int, err error) {
	cw := &checksummed{w: w, crc: crc32.New(castagnoli)}
	h := make([]byte, 0, stateHeaderLen)
	h = append(h, stateMagic...)
	h = binary.LittleEndian.AppendUint32(h, stateVersion)
	h = append(h, stateLayout[:]...)
	h = append(h, boolByte(s.p.Private), 0)
	h = binary.LittleEndian.AppendUint64(h, uint64(s.epoch.UnixNano()))
	h = binary.LittleEndian.AppendUint64(h, uint64(now.UnixNano()))
	if _, err := cw.Write(h); err != nil {
		return 0, 0, 0, err
	}
	var buf []byte // one shard's swarms, reused
	for k := range s.shards {
		sh := &s.shards[k]
		sh.mu.Lock()
		if sh.closed {
			sh.mu.Unlock()
			return 0, 0, 0, errClosed
		}
		buf = buf[:0]
		for slot := range sh.swarms {
			w := &sh.swarms[slot]
			if !w.used {
				continue
			}
			v4 := sh.view(&w.v4, false)
			var v6 list
			if v := sh.v6(w); v != nil {
				v6 = sh.view(&v.peerList, true)
			} else {
				v6 = sh.view(&peerList{}, true)
			}
			buf = append(buf, w.hash[:]...)
			for _, n := range [...]int32{int32(w.downloaded), v4.n, v4.seeders, v6.n, v6.seeders} {
				buf = binary.LittleEndian.AppendUint32(buf, uint32(n))
			}
			if v4.n > 0 {
				buf = append(buf, v4.records()...)
			}
			if v6.n > 0 {
				buf = append(buf, v6.records()...)
			}
			swarms++
			peers += uint64(v4.n) + uint64(v6.n)
		}
		sh.mu.Unlock()
		if _, err := cw.Write(buf); err != nil {
			return 0, 0, 0, err
		}
	}
	t := make([]byte, 0, stateTrailerLen)
	t = append(t, stateEndMagic...)
	t = binary.LittleEndian.AppendUint64(t, swarms)
	t = binary.LittleEndian.AppendUint64(t, peers)
	if _, err := cw.Write(t); err != nil {
		return 0, 0, 0, err
	}
	t = binary.LittleEndian.AppendUint32(t[:0], cw.crc.Sum32())
	if _, err := cw.Write(t); err != nil {
		return 0, 0, 0, err
	}
	return swarms, peers, cw.n, nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// runSnapshots saves the state every interval until ctx ends; done is
// closed then.
func (s *Store) runSnapshots(ctx context.Context, every time.Duration, done chan<- struct{}) {
	defer close(done)
	tracker.Every(ctx, every, func() {
		if err := s.Save(); err != nil {
			glog.Errorf("%v; the previous snapshot stays", err)
		}
	})
}

// Load returns a store of p holding the swarms of the state file
// p.StateFile, but for the peers silent for longer than p.Lifetime by
// now. A file that is missing gives an empty store and no error; one that
// cannot be read, or used (truncated, corrupt, foreign, too old, of
// another record layout or private_tracker setting: an error wrapping
// errStateRefused), gives an empty store and an error that says why.
func Load(p Params, now time.Time) (*Store, error) {
	data, err := os.ReadFile(p.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return New(p), nil
	}
	if err != nil {
		return New(p), fmt.Errorf("not loaded: %w", err)
	}
	build := p
	build.StateFile = "" // closing a store half built must not write the file
	s := New(build)
	if err := s.loadState(data, now); err != nil {
		s.Close()
		return New(p), fmt.Errorf("%w: %s: %v", errStateRefused, p.StateFile, err)
	}
	s.p.StateFile = p.StateFile
	return s, nil
}

// loadState fills the empty store s from a state file's bytes.
func (s *Store) loadState(data []byte, now time.Time) error {
	if len(data) < len(stateMagic) || string(data[:len(stateMagic)]) != stateMagic {
		return errors.New("not a chihaya state file (no CHYSTATE header)")
	}
	if len(data) < stateHeaderLen+stateTrailerLen {
		return fmt.Errorf("truncated: %d bytes, shorter than a header and a trailer", len(data))
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != stateVersion {
		return fmt.Errorf("format version %d; this tracker reads version %d", v, stateVersion)
	}
	tr := data[len(data)-stateTrailerLen:]
	if string(tr[:len(stateEndMagic)]) != stateEndMagic {
		return errors.New("truncated: no trailer at the end (the write was cut short?)")
	}
	if got, want := crc32.Checksum(data[:len(data)-4], castagnoli), binary.LittleEndian.Uint32(tr[len(tr)-4:]); got != want {
		return fmt.Errorf("corrupt: checksum %08x, the file says %08x", got, want)
	}
	if layout := [6]byte(data[12:18]); layout != stateLayout {
		return fmt.Errorf("another record layout (%v, this tracker's is %v)", layout, stateLayout)
	}
	if private := data[18] == 1; private != s.p.Private {
		return fmt.Errorf("written by a tracker with private_tracker %v, this one has %v", private, s.p.Private)
	}
	fileEpoch := time.Unix(0, int64(binary.LittleEndian.Uint64(data[20:])))
	written := time.Unix(0, int64(binary.LittleEndian.Uint64(data[28:])))
	if age := now.Sub(written); s.p.Lifetime > 0 && age > s.p.Lifetime {
		return fmt.Errorf("too old: written %v ago, longer than the peer lifetime (%v): every peer in it has expired", age.Round(time.Second), s.p.Lifetime)
	}
	wantSwarms, wantPeers := binary.LittleEndian.Uint64(tr[8:]), binary.LittleEndian.Uint64(tr[16:])

	// The store's clock starts a lifetime ago, so that every peer kept
	// has a last announce after the epoch.
	s.epoch = now.Add(-s.p.Lifetime - time.Second)
	cutoff := now.Add(-s.p.Lifetime)
	if s.p.Lifetime <= 0 {
		cutoff = time.Time{}
	}
	// shift turns a record's time in the file into the store's.
	shift := int64(fileEpoch.Sub(s.epoch) / time.Second)
	minSeen := int64(cutoff.Sub(fileEpoch) / time.Second)
	if cutoff.IsZero() {
		minSeen = -1 << 62
	}
	maxSeen := int64(now.Sub(s.epoch) / time.Second)

	body := data[stateHeaderLen : len(data)-stateTrailerLen]
	var swarms, peers uint64
	for len(body) > 0 {
		if len(body) < swarmHeaderLen {
			return fmt.Errorf("corrupt: swarm %d cut short", swarms)
		}
		h := bittorrent.InfoHash(body[:idLen])
		f := body[idLen:swarmHeaderLen]
		downloaded := binary.LittleEndian.Uint32(f)
		n4, s4 := binary.LittleEndian.Uint32(f[4:]), binary.LittleEndian.Uint32(f[8:])
		n6, s6 := binary.LittleEndian.Uint32(f[12:]), binary.LittleEndian.Uint32(f[16:])
		body = body[swarmHeaderLen:]
		sh := s.shard(&h)
		if s4 > n4 || s6 > n6 || n4 > 1<<28 || n6 > 1<<28 {
			return fmt.Errorf("corrupt: swarm %x: %d/%d IPv4 and %d/%d IPv6 seeders/peers", h, s4, n4, s6, n6)
		}
		if _, dup := sh.lookup(&h); dup {
			return fmt.Errorf("corrupt: swarm %x twice", h)
		}
		slot := sh.add(h)
		w := &sh.swarms[slot]
		w.downloaded = downloaded
		var err error
		l4 := sh.view(&w.v4, false)
		if body, err = loadList(&l4, body, n4, s4, shift, minSeen, maxSeen); err != nil {
			return fmt.Errorf("corrupt: swarm %x: %v", h, err)
		}
		if n6 > 0 {
			l6, _ := sh.list(w, true, true)
			if body, err = loadList(&l6, body, n6, s6, shift, minSeen, maxSeen); err != nil {
				return fmt.Errorf("corrupt: swarm %x: %v", h, err)
			}
			if l6.len() == 0 {
				sh.dropV6(w)
			} else {
				s.markTwins(sh, w)
			}
		}
		swarms++
		peers += uint64(n4) + uint64(n6)
		s.restored.Swarms++
		s.restored.Peers[0] += int(w.v4.n)
		s.restored.Seeders[0] += int(w.v4.seeders)
		if v := sh.v6(w); v != nil {
			s.restored.Peers[1] += int(v.n)
			s.restored.Seeders[1] += int(v.seeders)
		}
	}
	if swarms != wantSwarms || peers != wantPeers {
		return fmt.Errorf("corrupt: %d swarms and %d peers, the trailer says %d and %d", swarms, peers, wantSwarms, wantPeers)
	}
	return nil
}

// loadList fills the empty list l with the n records at the start of
// body, of which the first seeders are seeders, but for those last seen
// before minSeen (in the file's seconds). shift moves a record's time to
// the store's clock; times after maxSeen (a clock that went back) become
// maxSeen. It returns the rest of body.
func loadList(l *list, body []byte, n, seeders uint32, shift, minSeen, maxSeen int64) ([]byte, error) {
	size := int(n) * l.stride
	if len(body) < size {
		return nil, fmt.Errorf("%d records cut short", n)
	}
	recs := body[:size]
	if n == 0 {
		return body, nil
	}
	l.resize(int(n))
	out := l.sh.arena.bytesAt(l.off, size)
	seenAt, kept, keptSeeders := l.offSeen(), 0, 0
	for i := range int(n) {
		r := recs[i*l.stride : (i+1)*l.stride]
		word := binary.LittleEndian.Uint32(r[seenAt:])
		seen := int64(word &^ flagsMask)
		if seen < minSeen {
			continue
		}
		o := out[kept*l.stride : (kept+1)*l.stride]
		copy(o, r)
		t := max(0, min(seen+shift, maxSeen))
		binary.LittleEndian.PutUint32(o[seenAt:], uint32(t)&^flagsMask|word&flagSnatched) // twins are marked again
		kept++
		if i < int(seeders) {
			keptSeeders++
		}
	}
	l.n, l.seeders = int32(kept), int32(keptSeeders)
	if kept >= indexFrom {
		l.buildIndex()
	}
	l.shrink()
	return body[size:], nil
}

// markTwins marks the IPv6 records of the swarm whose peer_id has an IPv4
// record too, when peers are dual-stacked: the file's marks were those of
// the tracker that wrote it, which may have had another setting.
func (s *Store) markTwins(sh *shard, w *swarm) {
	v := sh.v6(w)
	l6 := sh.view(&v.peerList, true)
	if !s.p.DualStacked {
		return
	}
	v4 := sh.view(&w.v4, false)
	for i := range l6.len() {
		if v4.find((*bittorrent.PeerID)(l6.id(i))) >= 0 {
			v.twin(&l6, i, true)
		}
	}
}

// stateSize is the size of the state file of the store as it is now, for
// tests and figures.
func (s *Store) stateSize() int {
	var c counter
	s.writeState(&c, time.Now())
	return int(c)
}

type counter int

func (c *counter) Write(p []byte) (int, error) { *c += counter(len(p)); return len(p), nil }
