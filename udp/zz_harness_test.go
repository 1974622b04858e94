package udp

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// Temporary: serves on UDPH_ADDR for UDPH_DUR with UDPH_BATCH, UDPH_SOCKS, UDPH_READERS.
func TestHarness(t *testing.T) {
	addr := os.Getenv("UDPH_ADDR")
	if addr == "" {
		return
	}
	atoi := func(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }
	batchSize = atoi("UDPH_BATCH")
	s := newTestServer(t, nil, nil)
	conns, err := listen(addr, atoi("UDPH_SOCKS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		for range atoi("UDPH_READERS") {
			go s.Serve(c)
		}
	}
	d, _ := time.ParseDuration(os.Getenv("UDPH_DUR"))
	time.Sleep(d)
	s.Shutdown(context.Background())
	_ = net.IPv4len
	snap := s.stats.Snapshot()
	t.Logf("udp %+v announces %d", snap.UDP, snap.Transports[1].Requests[0][0])
}
