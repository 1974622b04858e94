package chihaya

import "testing"

func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		percent int
		live    uint64
		want    int
	}{
		{25, 0, 25},          // nothing measured yet
		{25, 50 << 20, 25},   // a large heap: 25% is 12.5 MiB, above the floor
		{25, 2 << 20, 200},   // a small one: 4 MiB of headroom, not 0.5
		{25, 16 << 10, 1000}, // an empty one: capped
		{100, 2 << 20, 200},  // the floor applies at any percentage
		{300, 2 << 20, 300},  // and never lowers it
	} {
		if got := gcPercent(tc.percent, tc.live); got != tc.want {
			t.Errorf("gcPercent(%d, %d) = %d, want %d", tc.percent, tc.live, got, tc.want)
		}
	}
}
