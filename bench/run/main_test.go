package main

import (
	"strings"
	"testing"
)

func TestParseResult(t *testing.T) {
	line := `timed: mode=udp conns=16 requests=451200 secs=3.01 rps=149424 failed=2 errors=1383 bytes_per_resp=119 p50_ms=0.868 p90_ms=1.376 p99_ms=2.294 p999_ms=3.736 first_error="1 of 32 announces unanswered: i/o timeout"`
	got, err := parseResult(line)
	if err != nil {
		t.Fatal(err)
	}
	want := result{rps: 149424, p50: 0.868, p90: 1.376, p99: 2.294, p999: 3.736, failed: 2, errors: 1383, firstError: "1 of 32 announces unanswered: i/o timeout"}
	if got != want {
		t.Errorf("parseResult = %+v, want %+v", got, want)
	}
	for _, bad := range []string{
		"timed: mode=udp rps=1",
		"timed: rps=x p50_ms=1 p90_ms=1 p99_ms=1 p999_ms=1 failed=0 errors=0",
		"timed: rps 1",
	} {
		if _, err := parseResult(bad); err == nil {
			t.Errorf("parseResult(%q) accepted it", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	runs := []result{{rps: 3, p99: 9, errors: 1}, {rps: 1, p99: 7, errors: 5}, {rps: 2, p99: 8, errors: 0}}
	if got := median(runs); got.rps != 2 || got.p99 != 8 || got.errors != 1 {
		t.Errorf("median = %+v, want rps 2, p99 8, errors 1", got)
	}
	if got := median(runs[:2]); got.rps != 1 {
		t.Errorf("median of two = %v, want the lower, 1", got.rps)
	}
}

func TestConfigKnows(t *testing.T) {
	if !configKnows("addr") || !configKnows("admin_addr") || configKnows("no_such_key") {
		t.Error("configKnows does not follow config.Config's JSON keys")
	}
}

func TestReadSettings(t *testing.T) {
	for _, tc := range []struct {
		env map[string]string
		err string
	}{
		{map[string]string{"PEERS": "5000", "DUR": "1m", "UDP": "0"}, ""},
		{map[string]string{"DUR": "2"}, ""},
		{map[string]string{"PEERS": "0"}, "PEERS"},
		{map[string]string{"TORRENTS": "ten"}, "TORRENTS"},
		{map[string]string{"DUR": "2h"}, "DUR"},
		{map[string]string{"UDP": "yes"}, "UDP"},
		{map[string]string{"OPENTRACKER": "2"}, "OPENTRACKER"},
		{map[string]string{"CEILING": "on"}, "CEILING"},
	} {
		for _, k := range []string{"PEERS", "TORRENTS", "DUR", "ROUNDS", "CONNS", "UDP", "OPENTRACKER", "CEILING", "CONFIG"} {
			t.Setenv(k, tc.env[k])
		}
		s, err := readSettings()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("readSettings(%v) = %v, want %q", tc.env, err, tc.err)
			continue
		}
		if tc.err == "" && tc.env["DUR"] == "2" && s.dur.Seconds() != 2 {
			t.Errorf("DUR=2 gives %v, want 2s", s.dur)
		}
	}
}
