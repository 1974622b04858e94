package mysql

import (
	"math"
	"testing"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// Each of Ocelot's credit rules (gazelle.md §5, plus the param
// multipliers), as one case of the pure function: no database.
func TestCreditRules(t *testing.T) {
	normal := creditTerms{}
	free := creditTerms{free: backend.Free}
	neutral := creditTerms{free: backend.Neutral}
	tokened := creditTerms{tokened: true}
	boosted := creditTerms{userMul: &multipliers{up: 2, down: 0.5}, torMul: &multipliers{up: 1.5, down: 1}}
	// traffic is an announce 1000 up and 400 down past its baseline;
	// credited is its outcome when up and down are credited, withToken
	// when the user's token covered it.
	traffic := func(terms creditTerms) creditIn {
		return creditIn{known: true, now: counters{1000, 400, 0}, terms: terms}
	}
	credited := func(up, down int64) creditOut {
		return creditOut{baseline: counters{1000, 400, 0}, rawUp: 1000, rawDown: 400, up: up, down: down, balance: 600}
	}
	withToken := func(o creditOut) creditOut {
		o.token, o.tokenDown = true, 400
		return o
	}
	for _, tc := range []struct {
		rule string
		in   creditIn
		want creditOut
	}{
		{
			rule: "the first announce sets the baseline without credit",
			in:   creditIn{now: counters{500, 400, 3}, balance: 7, terms: normal},
			want: creditOut{baseline: counters{500, 400, 3}, session: true, balance: 7},
		},
		{
			rule: "started sets the baseline without credit",
			in:   creditIn{known: true, prev: counters{100, 100, 0}, now: counters{5000, 5000, 9}, event: bittorrent.Started, balance: 7, terms: normal},
			want: creditOut{baseline: counters{5000, 5000, 9}, session: true, balance: 7},
		},
		{
			rule: "uploaded going back re-baselines without credit, corrupt keeps its baseline",
			in:   creditIn{known: true, prev: counters{700, 600, 5}, now: counters{100, 650, 9}, balance: 7, terms: normal},
			want: creditOut{baseline: counters{100, 650, 5}, balance: 7},
		},
		{
			rule: "downloaded going back re-baselines without credit",
			in:   creditIn{known: true, prev: counters{700, 600, 5}, now: counters{800, 50, 5}, balance: 7, terms: normal},
			want: creditOut{baseline: counters{800, 50, 5}, balance: 7},
		},
		{
			rule: "the deltas since the baseline are credited and move the balance",
			in:   creditIn{known: true, prev: counters{700, 600, 0}, now: counters{900, 650, 0}, balance: 7, terms: normal},
			want: creditOut{baseline: counters{900, 650, 0}, rawUp: 200, rawDown: 50, up: 200, down: 50, balance: 157},
		},
		{
			rule: "stopped still credits its delta",
			in:   creditIn{known: true, prev: counters{10, 10, 0}, now: counters{30, 15, 0}, event: bittorrent.Stopped, terms: normal},
			want: creditOut{baseline: counters{30, 15, 0}, rawUp: 20, rawDown: 5, up: 20, down: 5, balance: 15},
		},
		{
			rule: "completed credits its delta",
			in:   creditIn{known: true, prev: counters{10, 10, 0}, now: counters{30, 15, 0}, event: bittorrent.Completed, terms: normal},
			want: creditOut{baseline: counters{30, 15, 0}, rawUp: 20, rawDown: 5, up: 20, down: 5, balance: 15},
		},
		{
			rule: "corrupt bytes count against the torrent's balance only",
			in:   creditIn{known: true, prev: counters{0, 0, 0}, now: counters{10, 20, 7}, balance: 100, terms: normal},
			want: creditOut{baseline: counters{10, 20, 7}, rawUp: 10, rawDown: 20, up: 10, down: 20, balance: 83},
		},
		{
			rule: "corrupt bytes alone move the balance and nothing else",
			in:   creditIn{known: true, prev: counters{10, 10, 0}, now: counters{10, 10, 7}, balance: 100, terms: tokened},
			want: creditOut{baseline: counters{10, 10, 7}, balance: 93},
		},
		{
			rule: "a corrupt counter going down gives the balance back",
			in:   creditIn{known: true, prev: counters{10, 10, 7}, now: counters{10, 10, 2}, balance: 100, terms: normal},
			want: creditOut{baseline: counters{10, 10, 2}, balance: 105},
		},
		{
			rule: "an announce that moved no counter credits nothing and uses no token",
			in:   creditIn{known: true, prev: counters{10, 10, 0}, now: counters{10, 10, 0}, balance: 100, terms: tokened},
			want: creditOut{baseline: counters{10, 10, 0}, balance: 100},
		},
		{
			rule: "freeleech credits no download",
			in:   traffic(free),
			want: credited(1000, 0),
		},
		{
			rule: "neutral credits nothing, the balance still moves",
			in:   traffic(neutral),
			want: credited(0, 0),
		},
		{
			rule: "a token acts as freeleech and records the raw download",
			in:   traffic(tokened),
			want: withToken(credited(1000, 0)),
		},
		{
			rule: "a token records a download of 0 too",
			in:   creditIn{known: true, prev: counters{0, 0, 0}, now: counters{1000, 0, 0}, terms: tokened},
			want: creditOut{baseline: counters{1000, 0, 0}, rawUp: 1000, up: 1000, balance: 1000, token: true},
		},
		{
			rule: "a token on a freeleech torrent still records the raw download",
			in:   traffic(creditTerms{free: backend.Free, tokened: true}),
			want: withToken(credited(1000, 0)),
		},
		{
			rule: "neutral takes precedence over a token: no token bookkeeping",
			in:   traffic(creditTerms{free: backend.Neutral, tokened: true}),
			want: credited(0, 0),
		},
		{
			rule: "multipliers scale the credit, user's times torrent's, rounded to the byte; the balance stays raw",
			in:   creditIn{known: true, prev: counters{0, 0, 0}, now: counters{1001, 4001, 0}, terms: boosted},
			want: creditOut{baseline: counters{1001, 4001, 0}, rawUp: 1001, rawDown: 4001, up: 3003, down: 2001, balance: -3000},
		},
		{
			rule: "multipliers apply after freeleech",
			in:   traffic(creditTerms{free: backend.Free, torMul: &multipliers{up: 1.5, down: 2}}),
			want: credited(1500, 0),
		},
		{
			rule: "multipliers leave neutral at nothing",
			in:   traffic(creditTerms{free: backend.Neutral, torMul: &multipliers{up: 4, down: 4}}),
			want: credited(0, 0),
		},
		{
			rule: "multipliers leave the token's download raw",
			in:   traffic(creditTerms{tokened: true, userMul: &multipliers{up: 2, down: 0.5}, torMul: &multipliers{up: 1.5, down: 2}}),
			want: withToken(credited(3000, 0)),
		},
		{
			rule: "a zero multiplier credits nothing that way",
			in:   traffic(creditTerms{userMul: &multipliers{up: 0, down: 1}}),
			want: credited(0, 400),
		},
		{
			rule: "counters beyond int64 saturate the deltas and the balance",
			in:   creditIn{known: true, prev: counters{0, 0, 0}, now: counters{math.MaxUint64, 0, 0}, balance: 10, terms: normal},
			want: creditOut{baseline: counters{math.MaxUint64, 0, 0}, rawUp: math.MaxInt64, up: math.MaxInt64, balance: math.MaxInt64},
		},
		{
			rule: "a multiplied credit saturates",
			in:   creditIn{known: true, prev: counters{0, 0, 0}, now: counters{1 << 62, 0, 0}, terms: creditTerms{torMul: &multipliers{up: 4, down: 1}}},
			want: creditOut{baseline: counters{1 << 62, 0, 0}, rawUp: 1 << 62, up: math.MaxInt64, balance: 1 << 62},
		},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			if got := creditAnnounce(tc.in); got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestScaleCredit(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		f    float64
		want int64
	}{
		{1000, 1, 1000},
		{1 << 62, 1, 1 << 62},
		{1001, 0.5, 501},
		{1000, 3, 3000},
		{1000, 0, 0},
		{1000, -2, 0},
		{-5, 2, 0},
		{1 << 62, 4, 1<<63 - 1},
	} {
		if got := scaleCredit(tc.n, tc.f); got != tc.want {
			t.Errorf("scaleCredit(%d, %v) = %d, want %d", tc.n, tc.f, got, tc.want)
		}
	}
}
