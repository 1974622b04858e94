package udp

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkHandleAnnounce is the handler alone: parse, check the ID,
// announce to the memory store, write the answer (a 50-peer swarm).
func BenchmarkHandleAnnounce(b *testing.B) {
	w := newWorker(newTestServer(b, nil, nil))
	for n := range 50 {
		newClient(b, w, fmt.Sprintf("10.0.1.%d:1", n)).announce(ann{ih: hash(1), peer: peer(n), port: uint16(6000 + n)})
	}
	c := newClient(b, w, "10.0.0.1:1")
	p := c.announcePacket(ann{ih: hash(1), peer: peer(99), left: 1, numWant: 50, port: 7000})
	from := netip.MustParseAddrPort("10.0.0.1:1")
	var out []byte
	b.ReportAllocs()
	for range b.N {
		out = w.handle(p, from, t0, out)
	}
}
