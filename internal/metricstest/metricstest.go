// Package metricstest reads the daemon's /metrics in tests: the
// Prometheus text format parsed into families, and one sample found by its
// name and labels.
package metricstest

import (
	"io"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Parse parses the text format read from r, failing tb if it is not.
func Parse(tb testing.TB, r io.Reader) map[string]*dto.MetricFamily {
	tb.Helper()
	var p expfmt.TextParser
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		tb.Fatalf("/metrics is not the text format: %v", err)
	}
	return mfs
}

// Value finds the sample of name whose labels are exactly labels
// ("k=v,k=v", in any order; "" for none). A histogram's value is its
// sample count.
func Value(mfs map[string]*dto.MetricFamily, name, labels string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	want := map[string]string{}
	if labels != "" {
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			want[k] = v
		}
	}
next:
	for _, m := range mf.Metric {
		if len(m.Label) != len(want) {
			continue
		}
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}
