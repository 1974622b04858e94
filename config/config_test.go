package config

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
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
		{`{"stats_buffer_size": 4096}`, `unknown key "stats_buffer_size"`},
		{`{"addr": ""}`, `addr: must not be empty`},
		{`{"udp_addr": "6881"}`, `udp_addr: "6881": want host:port`},
		{`{"udp_addr": "[::1]"}`, `udp_addr: "[::1]": want host:port`},
		{`{"udp_addr": "127.0.0.1:"}`, `udp_addr: "127.0.0.1:": want host:port`},
		{`{"udp_addr": 6881}`, `udp_addr`},
		{`{"udp_secret": "short"}`, `udp_secret: want at least 32 characters (or none, for a random key), got 5`},
		{`{"gc_percent": 0}`, `gc_percent: want at least 5`},
		{`{"preferred_ipv4_subnet": 33}`, `preferred_ipv4_subnet: want a prefix length from 0 to 32`},
		{`{"preferred_ipv6_subnet": -1}`, `preferred_ipv6_subnet: want a prefix length from 0 to 128`},
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
	// Operators learn the keys from this file: it names every one, at its
	// default.
	raw, _ := os.ReadFile("../example.json")
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	ct := reflect.TypeOf(Config{})
	for i := range ct.NumField() {
		key, _, _ := strings.Cut(ct.Field(i).Tag.Get("json"), ",")
		if _, ok := keys[key]; !ok {
			t.Errorf("example.json does not name %q", key)
		}
	}
	cfg.Tracker.Params = nil // the example names the memory store's one parameter
	if len(cfg.TrustedProxies) == 0 {
		cfg.TrustedProxies = nil // [] in the file, nil by default: the same
	}
	if want := Default(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("example.json differs from the defaults:\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestDeploymentKeys(t *testing.T) {
	cfg, err := Decode(strings.NewReader(`{"trusted_proxies": ["127.0.0.1/32", "10.0.0.1/8", "::1/128"], "real_ip_header": "x-real-ip", "announce_jitter": "5m"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TrustedProxies) != 3 || !cfg.TrustedProxies[1].Contains(netip.MustParseAddr("10.200.0.1")) ||
		cfg.TrustedProxies[1].Contains(netip.MustParseAddr("11.0.0.1")) || cfg.AnnounceJitter.Duration != 5*time.Minute {
		t.Errorf("decoded %v, jitter %v", cfg.TrustedProxies, cfg.AnnounceJitter)
	}
	if d := Default(); d.AnnounceJitter.Duration != 0 || d.RealIPHeader != "" || d.TrustedProxies != nil {
		t.Errorf("defaults: jitter %v, header %q, proxies %v", d.AnnounceJitter, d.RealIPHeader, d.TrustedProxies)
	}
	for _, tc := range []struct{ json, want string }{
		{`{"trusted_proxies": ["127.0.0.1"], "real_ip_header": "X-Real-IP"}`, `trusted_proxies: `},
		{`{"trusted_proxies": ["10.0.0.0/33"], "real_ip_header": "X-Real-IP"}`, `trusted_proxies: `},
		{`{"trusted_proxies": ["proxy.example"], "real_ip_header": "X-Real-IP"}`, `trusted_proxies: `},
		{`{"trusted_proxies": "127.0.0.1/32", "real_ip_header": "X-Real-IP"}`, `trusted_proxies: `},
		{`{"trusted_proxies": ["::ffff:127.0.0.1/128"], "real_ip_header": "X-Real-IP"}`, `trusted_proxies: ::ffff:127.0.0.1/128: want an IPv4 or IPv6 CIDR`},
		{`{"trusted_proxies": ["127.0.0.1/32"]}`, `trusted_proxies: without real_ip_header`},
		{`{"trusted_proxies": ["127.0.0.1/32"], "real_ip_header": "Forwarded"}`, `real_ip_header: "Forwarded": want`},
		{`{"real_ip_header": "X-Forwarded-For"}`, `real_ip_header: X-Forwarded-For is believed only from trusted_proxies`},
		{`{"real_ip_header": 1}`, `real_ip_header`},
		{`{"announce_jitter": "-1s"}`, `announce_jitter: must not be negative`},
		{`{"announce_jitter": "30m"}`, `announce_jitter: 30m0s must be shorter than announce`},
		{`{"announce_jitter": "soon"}`, `announce_jitter: `},
		{`{"announce_jitter": "10m", "peer_lifetime": "35m"}`, `peer_lifetime: 35m0s is shorter than announce plus announce_jitter (40m0s)`},
	} {
		_, err := Decode(strings.NewReader(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.json, err, tc.want)
		}
	}
}

func TestReload(t *testing.T) {
	old := Default()
	next, err := Decode(strings.NewReader(`{"addr": ":7000", "admin_addr": "", "udp_addr": "", "udp_secret": "0123456789abcdef0123456789abcdef", "tracker": {"driver": "memory", "params": {"shards": 2}},
		"announce": "20m", "min_announce": "10m", "announce_jitter": "1m", "peer_lifetime": "50m", "purge_inactive_torrents": false,
		"default_num_want": 10, "max_num_want": 20, "max_scrape_infohashes": 5, "allow_ip_spoofing": true,
		"trusted_proxies": ["127.0.0.1/32"], "real_ip_header": "X-Forwarded-For", "shutdown_timeout": "3s", "http_read_timeout": "1s"}`))
	if err != nil {
		t.Fatal(err)
	}
	merged, restart := old.Reload(next)
	if merged == old || merged == next {
		t.Fatal("Reload must return a new Config")
	}
	if strings.Join(restart, " ") != "addr admin_addr udp_addr tracker http_read_timeout" {
		t.Errorf("needRestart %q", restart)
	}
	want := *next
	want.Addr, want.AdminAddr, want.UDPAddr, want.Tracker, want.ReadTimeout = old.Addr, old.AdminAddr, old.UDPAddr, old.Tracker, old.ReadTimeout
	got, _ := json.Marshal(merged)
	wantJSON, _ := json.Marshal(&want)
	if string(got) != string(wantJSON) {
		t.Errorf("merged\n %s\nwant\n %s", got, wantJSON)
	}
	if err := merged.Validate(); err != nil {
		t.Error(err)
	}
	if old.Announce.Duration != 30*time.Minute || old.Addr != ":6881" || old.UDPAddr != ":6881" || old.UDPSecret != "" {
		t.Error("Reload changed the running configuration in place")
	}
	// Every key is either reloadable or reported when it changes.
	if _, restart := old.Reload(Default()); len(restart) != 0 {
		t.Errorf("an unchanged file needs a restart for %q", restart)
	}
	// A driver's params are compared as JSON, not as bytes.
	for _, tc := range []struct {
		before, after string
		restart       bool
	}{
		{`{"shards": 2}`, "{\n  \"shards\":   2\n}", false},
		{`{"shards": 2}`, `{"shards": 4}`, true},
		{`{"shards": 2}`, `{"shards": 2, "state_file": "/x"}`, true},
	} {
		a, err := Decode(strings.NewReader(`{"tracker": {"driver": "memory", "params": ` + tc.before + `}}`))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Decode(strings.NewReader(`{"tracker": {"driver": "memory", "params": ` + tc.after + `}}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, restart := a.Reload(b); (len(restart) != 0) != tc.restart {
			t.Errorf("params %s, then %q: needRestart %q, want a restart: %v", tc.before, tc.after, restart, tc.restart)
		}
	}
	for _, key := range []string{"announce", "min_announce", "peer_lifetime", "default_num_want", "max_num_want",
		"max_scrape_infohashes", "allow_ip_spoofing", "trusted_proxies", "real_ip_header", "announce_jitter", "udp_secret"} {
		if !Reloadable(key) {
			t.Errorf("%s is not reloadable", key)
		}
	}
	for _, key := range []string{"addr", "admin_addr", "udp_addr", "tracker", "backend", "private_tracker"} {
		if Reloadable(key) {
			t.Errorf("%s is reloadable", key)
		}
	}
}

func TestUDPKeys(t *testing.T) {
	for _, tc := range []struct {
		json, addr, secret string
	}{
		{`{}`, ":6881", ""},
		{`{"udp_addr": ""}`, "", ""},
		{`{"udp_addr": "127.0.0.1:7000"}`, "127.0.0.1:7000", ""},
		{`{"udp_addr": "[::1]:7000"}`, "[::1]:7000", ""},
		{`{"udp_secret": "0123456789abcdef0123456789abcdef"}`, ":6881", "0123456789abcdef0123456789abcdef"},
		{`{"udp_secret": "a much longer secret, which is fine: any length from 32 on"}`, ":6881", "a much longer secret, which is fine: any length from 32 on"},
	} {
		cfg, err := Decode(strings.NewReader(tc.json))
		if err != nil {
			t.Errorf("%s: %v", tc.json, err)
			continue
		}
		if cfg.UDPAddr != tc.addr || cfg.UDPSecret != tc.secret {
			t.Errorf("%s: udp_addr %q, udp_secret %q; want %q, %q", tc.json, cfg.UDPAddr, cfg.UDPSecret, tc.addr, tc.secret)
		}
	}
}

func TestAbuseKeys(t *testing.T) {
	d := Default()
	if d.RateLimit.On() || d.RateLimit != (RateLimit{}) || d.MaxConnections != 16384 || d.AdminToken != "" {
		t.Errorf("defaults: rate_limit %+v, max_connections %d, admin_token %q", d.RateLimit, d.MaxConnections, d.AdminToken)
	}
	cfg, err := Decode(strings.NewReader(`{"rate_limit": {"requests_per_second": 0.5, "burst": 20}, "max_connections": 100, "admin_token": "s3cret"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.RateLimit.On() || cfg.RateLimit.RequestsPerSecond != 0.5 || cfg.RateLimit.Burst != 20 || cfg.MaxConnections != 100 || cfg.AdminToken != "s3cret" {
		t.Errorf("decoded rate_limit %+v, max_connections %d, admin_token %q", cfg.RateLimit, cfg.MaxConnections, cfg.AdminToken)
	}
	for _, tc := range []struct{ json, want string }{
		{`{"rate_limit": {"requests_per_second": 1}}`, `rate_limit.burst: want 1 to 10000 with requests_per_second set, got 0`},
		{`{"rate_limit": {"burst": 5}}`, `rate_limit.requests_per_second: want `},
		{`{"rate_limit": {"requests_per_second": -1, "burst": 5}}`, `rate_limit.requests_per_second: `},
		{`{"rate_limit": {"requests_per_second": 0.00001, "burst": 5}}`, `rate_limit.requests_per_second: `},
		{`{"rate_limit": {"requests_per_second": 2e6, "burst": 5}}`, `rate_limit.requests_per_second: `},
		{`{"rate_limit": {"requests_per_second": 1, "burst": 10001}}`, `rate_limit.burst: `},
		{`{"rate_limit": {"requests_per_second": 1, "burst": -1}}`, `rate_limit.burst: `},
		{`{"rate_limit": {"rps": 1}}`, `unknown key "rate_limit"`},
		{`{"rate_limit": 5}`, `rate_limit`},
		{`{"max_connections": 0}`, `max_connections: must be at least 1, got 0`},
		{`{"max_connections": "many"}`, `max_connections`},
		{`{"admin_token": 1}`, `admin_token`},
	} {
		_, err := Decode(strings.NewReader(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.json, err, tc.want)
		}
	}
	for key, want := range map[string]bool{"rate_limit": true, "admin_token": true, "max_connections": false} {
		if Reloadable(key) != want {
			t.Errorf("Reloadable(%q) = %v, want %v", key, !want, want)
		}
	}
}

func TestListKeys(t *testing.T) {
	cfg, err := Decode(strings.NewReader(`{"torrent_list": {"mode": "allow", "file": "/var/lib/chihaya/torrents"},
		"client_list": {"mode": "deny", "prefixes": ["-XL0012-"]}, "full_scrape": true, "full_scrape_interval": "5m"}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TorrentList.Mode != ListAllow || cfg.ClientList.Prefixes[0] != "-XL0012-" || !cfg.FullScrape || cfg.FullScrapeInterval.Duration != 5*time.Minute {
		t.Errorf("decoded %+v %+v %v %v", cfg.TorrentList, cfg.ClientList, cfg.FullScrape, cfg.FullScrapeInterval)
	}
	if d := Default(); d.TorrentList != nil || d.ClientList != nil || d.FullScrape || d.FullScrapeInterval.Duration != time.Minute {
		t.Errorf("defaults: %v %v %v %v", d.TorrentList, d.ClientList, d.FullScrape, d.FullScrapeInterval)
	}
	const private = `"private_tracker": true, "tracker_secret": "00000000000000000000000000000000", `
	for _, tc := range []struct{ json, want string }{
		{`{"torrent_list": {"mode": "white", "file": "x"}}`, `torrent_list.mode: want "allow" or "deny", got "white"`},
		{`{"torrent_list": {"mode": "allow"}}`, `torrent_list.file: must name`},
		{`{"torrent_list": {"mode": "allow", "file": "x", "reload": true}}`, `torrent_list`},
		{`{` + private + `"torrent_list": {"mode": "allow", "file": "x"}}`, `torrent_list: a private tracker`},
		{`{"client_list": {"prefixes": ["-TR"]}}`, `client_list.mode: want`},
		{`{"client_list": {"mode": "deny", "prefixes": ["-TR", ""]}}`, `client_list.prefixes[1]: "": want 1 to 20 bytes`},
		{`{"client_list": {"mode": "deny", "prefixes": ["` + strings.Repeat("x", 21) + `"]}}`, `client_list.prefixes[0]`},
		{`{` + private + `"client_list": {"mode": "deny", "prefixes": ["-TR"]}}`, `client_list: a private tracker`},
		{`{` + private + `"full_scrape": true}`, `full_scrape: a private tracker`},
		{`{"full_scrape_interval": "0s"}`, `full_scrape_interval: must be positive`},
	} {
		_, err := Decode(strings.NewReader(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.json, err, tc.want)
		}
	}
	for _, key := range []string{"torrent_list", "client_list", "full_scrape", "full_scrape_interval"} {
		if !Reloadable(key) {
			t.Errorf("%s is not reloadable", key)
		}
	}
}
