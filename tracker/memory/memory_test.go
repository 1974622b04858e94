package memory

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

func TestConformance(t *testing.T) {
	for _, shards := range []int{1, 64} {
		t.Run(map[int]string{1: "OneShard", 64: "Sharded"}[shards], func(t *testing.T) {
			trackertest.Run(t, func(_ *testing.T, o tracker.Options) tracker.Pool {
				return New(Params{Shards: shards, Private: o.Private, Peering: o.Peering})
			})
		})
	}
}

func TestOpenParams(t *testing.T) {
	for _, tc := range []struct {
		params string
		err    string // empty: no error
	}{
		{``, ""},
		{`null`, ""},
		{`{}`, ""},
		{`{"shards": 16}`, ""},
		{`{"shards": 0}`, "shards: want a power of two"},
		{`{"shards": 12}`, "shards: want a power of two"},
		{`{"shards": 16384}`, ""},
		{`{"shards": 32768}`, "shards: want a power of two from 1 to 16384"},
		{`{"shards": "16"}`, "tracker.params: shards"},
		{`{"shard": 16}`, `unknown key "shard"`},
	} {
		_, err := tracker.Open("memory", tracker.Options{Params: json.RawMessage(tc.params)})
		if tc.err == "" && err != nil {
			t.Errorf("%s: %v", tc.params, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want one containing %q", tc.params, err, tc.err)
		}
	}
}
