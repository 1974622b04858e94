package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPartialFileKeepsDefaults(t *testing.T) {
	cfg, err := Decode(strings.NewReader(`{"announce": "10m", "min_announce": "5m", "tracker": {"driver": "memory", "params": {"shards": 8}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Announce.Duration, want.MinAnnounce.Duration = 10*time.Minute, 5*time.Minute
	want.Tracker.Params = json.RawMessage(`{"shards": 8}`)
	got, _ := json.Marshal(cfg)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("decoded\n %s\nwant\n %s", got, wantJSON)
	}
	if cfg.Lifetime() != 20*time.Minute {
		t.Errorf("Lifetime %v, want twice announce", cfg.Lifetime())
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"anounce": "30m"}`, `unknown key "anounce"`},
		{`{"announce": 30}`, `announce:`},
		{`{"announce": "30 minutes"}`, `announce: `},
		{`{"announce": "-1m"}`, `announce: must be positive`},
		{`{"min_announce": "0s"}`, `min_announce: must be positive`},
		{`{"announce": "1m"}`, `min_announce: 15m0s is longer than announce`},
		{`{"peer_lifetime": "1m"}`, `peer_lifetime: 1m0s is shorter than announce`},
		{`{"peer_lifetime": "-1m"}`, `peer_lifetime: must not be negative`},
		{`{"default_num_want": -1}`, `default_num_want: must not be negative`},
		{`{"default_num_want": 300}`, `default_num_want: 300 is above max_num_want`},
		{`{"max_num_want": 0}`, `max_num_want: must be at least 1`},
		{`{"max_num_want": "many"}`, `max_num_want`},
		{`{"private_tracker": "yes"}`, `private_tracker`},
		{`{"max_scrape_infohashes": 0}`, `max_scrape_infohashes: must be at least 1`},
		{`{"http_max_header_bytes": 10}`, `http_max_header_bytes: must be at least 1024`},
		{`{"http_read_timeout": "0s"}`, `http_read_timeout: must be positive`},
		{`{"stats_buffer_size": 0}`, `stats_buffer_size: must be at least 1`},
		{`{"addr": ""}`, `addr: must not be empty`},
		{`{"private_tracker": true}`, `tracker_secret: private mode needs`},
		{`{"private_tracker": true, "tracker_secret": "00000000000000000000000000000000", "report_secret": "x"}`, `report_secret: want 32`},
		{`{"private_tracker": true, "tracker_secret": "00000000000000000000000000000000", "admin_addr": ""}`, `admin_addr: private mode needs it`},
		{`{"tracker": {"driver": ""}}`, `tracker.driver: must name a driver`},
		{`{"tracker": {"name": "memory"}}`, `unknown key "tracker"`},
		{`{"backend": {"driver": 3}}`, `backend`},
		{`{"announce": "30m"} {}`, `trailing data`},
		{`{"announce": "30m"`, `config`},
		{`[]`, `config`},
	} {
		_, err := Decode(strings.NewReader(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.json, err, tc.want)
		}
	}
}

func TestDecodeParams(t *testing.T) {
	var p struct {
		Shards int `json:"shards"`
	}
	for _, raw := range []string{``, `null`, ` `} {
		if err := DecodeParams("tracker.params", json.RawMessage(raw), &p); err != nil {
			t.Errorf("%q: %v", raw, err)
		}
	}
	if err := DecodeParams("tracker.params", json.RawMessage(`{"shards": 4}`), &p); err != nil || p.Shards != 4 {
		t.Errorf("shards %d, %v", p.Shards, err)
	}
	for raw, want := range map[string]string{
		`{"shard": 4}`:    `tracker.params: unknown key "shard"`,
		`{"shards": "4"}`: `tracker.params: shards`,
	} {
		if err := DecodeParams("tracker.params", json.RawMessage(raw), &p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", raw, err, want)
		}
	}
}

func TestLoad(t *testing.T) {
	if cfg, err := Load(""); err != nil || cfg.Addr != ":6881" {
		t.Errorf("Load(\"\") = %v, %v; want the defaults", cfg, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing file loaded")
	}
	path := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(path, []byte(`{"announce": "soon"}`), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "announce") {
		t.Errorf("error %v should name the file and the key", err)
	}
}

// The shipped example must load as it stands and run a public tracker.
func TestExampleJSON(t *testing.T) {
	cfg, err := Load("../example.json")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Private || cfg.Tracker.Name != "memory" || cfg.Backend.Name != "noop" {
		t.Errorf("example.json: private %v, tracker %q, backend %q", cfg.Private, cfg.Tracker.Name, cfg.Backend.Name)
	}
}
