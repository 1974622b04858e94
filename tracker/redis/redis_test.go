package redis

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/chihaya/chihaya/internal/redistest"
	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

var prefixes atomic.Int64

// opener returns trackertest's open on the servers at addrs: each store
// gets a key prefix of its own, so it starts empty.
func opener(addrs ...string) func(t *testing.T, o tracker.Options) tracker.Pool {
	return func(t *testing.T, o tracker.Options) tracker.Pool {
		t.Helper()
		params := map[string]any{"key_prefix": fmt.Sprintf("t%d:", prefixes.Add(1))}
		if len(addrs) == 1 {
			params["addr"] = addrs[0]
		} else {
			params["addrs"] = addrs
		}
		o.Params, _ = json.Marshal(params)
		pool, err := tracker.Open("redis", o)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return pool
	}
}

func TestConformance(t *testing.T) {
	t.Run("Server", func(t *testing.T) {
		s := redistest.Start(t)
		trackertest.Run(t, opener(s.Addr))
	})
	t.Run("Cluster", func(t *testing.T) {
		c := redistest.StartCluster(t)
		trackertest.Run(t, opener(c.Addrs()...))
	})
}
