package metricstest

import (
	"strings"
	"testing"
)

func TestValue(t *testing.T) {
	mfs := Parse(t, strings.NewReader(`# TYPE a counter
a 1
# TYPE b gauge
b{x="1",y="2"} 5
b{x="1"} 6
# TYPE h histogram
h_bucket{le="1"} 2
h_bucket{le="+Inf"} 3
h_sum 4
h_count 3
`))
	for _, tc := range []struct {
		name, labels string
		want         float64
		ok           bool
	}{
		{"a", "", 1, true},
		{"b", "y=2,x=1", 5, true}, // any order
		{"b", "x=1", 6, true},
		{"b", "", 0, false},
		{"b", "x=1,z=2", 0, false},
		{"h", "", 3, true}, // a histogram's count
		{"none", "", 0, false},
	} {
		got, ok := Value(mfs, tc.name, tc.labels)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Value(%s{%s}) = %v, %v; want %v, %v", tc.name, tc.labels, got, ok, tc.want, tc.ok)
		}
	}
}
