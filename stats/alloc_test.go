//go:build !race

// The race detector makes sync.Pool drop items on purpose, so allocation
// counts are only meaningful without it: `make test` runs this file in a
// pass of its own.

package stats

import (
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

// Every frontend records each request it answers: that must cost no
// allocation.
func TestRecordingAllocatesNothing(t *testing.T) {
	s := New()
	defer s.Close()
	n := testing.AllocsPerRun(1000, func() {
		s.RecordRequest(Announce, OK, time.Millisecond)
		s.RecordRequestVia(UDP, Scrape, ClientError, time.Microsecond)
		s.RecordUDP(UDPConnect)
		s.RecordPeer(bittorrent.PeerAdded, true)
	})
	if n != 0 {
		t.Errorf("recording allocates %v times", n)
	}
}
