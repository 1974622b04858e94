package udp

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzPacket feeds arbitrary datagrams to the handler, once as they are and
// once carrying a valid connection ID: never a crash, and never more bytes
// back than came in from an address that has not shown a valid ID.
func FuzzPacket(f *testing.F) {
	c := &client{t: f}
	f.Add(connectRequest(7))
	f.Add(c.announcePacket(ann{ih: hash(1), peer: peer(1), port: 6001}))
	f.Add(c.announcePacket(ann{ih: hash(1), peer: peer(1), port: 6001, options: urlData("/"+pkAlice+"/announce", 9)}))
	f.Add(c.announcePacket(ann{ih: hash(1), peer: peer(1), port: 6001, options: []byte{optionNOP, optionURLData, 200, 'x'}}))
	f.Add(c.scrapePacket(hash(1), hash(2)))
	f.Add([]byte{})
	s := newTestServer(f, nil, nil)
	w := newWorker(s)
	from := netip.MustParseAddrPort("[2001:db8::1]:6881")
	f.Fuzz(func(t *testing.T, p []byte) {
		out := w.handle(p, from, t0, nil)
		if len(out) > len(p) && (len(p) < 16 || binary.BigEndian.Uint32(p[8:]) != actionConnect) {
			t.Fatalf("%d-byte answer to a %d-byte packet with a bad ID", len(out), len(p))
		}
		if len(p) >= headerLen {
			q := append([]byte(nil), p...)
			binary.BigEndian.PutUint64(q, w.ring.mint(from.Addr(), bucketOf(t0)))
			w.handle(q, from, t0, out)
		}
	})
}
