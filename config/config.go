// Package config holds the tracker's configuration: the JSON file format, its
// defaults and its validation.
//
// A configuration file is a JSON object whose keys are those of Config. Keys
// left out keep their defaults (see Default), so a partial file is fine.
// Unknown keys, values of the wrong type and impossible values are errors that
// name the offending key, so a typo stops start-up instead of being ignored.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

// Duration is a time.Duration written in JSON as a Go duration string such
// as "30m" or "1h30m".
type Duration struct{ time.Duration }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string such as "30m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"30m\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration string such as \"30m\": %v", err)
	}
	d.Duration = v
	return nil
}

// DriverConfig names a storage driver and its driver-specific parameters.
// Params is kept raw: each driver decodes (and validates) its own.
type DriverConfig struct {
	Name   string          `json:"driver"`
	Params json.RawMessage `json:"params,omitempty"`
}

// Config is the whole tracker configuration.
type Config struct {
	// Addr is the public listener, serving announces and scrapes. ":PORT"
	// listens on every IPv4 and IPv6 address.
	Addr string `json:"addr"`
	// AdminAddr is the operators' listener (/check, /stats). Empty disables it.
	AdminAddr string `json:"admin_addr"`
	// UDPAddr is the UDP tracker's socket (BEP 15), announces and scrapes
	// on the same tracker as Addr's. ":PORT" serves every IPv4 and IPv6
	// address; empty turns UDP off.
	UDPAddr string `json:"udp_addr"`
	// UDPSecret keys the UDP connection IDs (a MAC of the client's address
	// and the time). Several instances behind one UDP load balancer given
	// the same secret accept each other's IDs. Empty: a random key per
	// process. Otherwise at least 32 characters. A reload takes a new
	// secret at once and still accepts the old one's IDs for the two
	// minutes an ID lives, so no client sees its ID refused.
	UDPSecret string `json:"udp_secret"`

	Tracker DriverConfig `json:"tracker"`
	Backend DriverConfig `json:"backend"`

	// Private switches to passkey-authenticated announces
	// (/<passkey>/announce) checked against the backend's users and torrents.
	Private bool `json:"private_tracker"`
	// TrackerSecret is Gazelle's TRACKER_SECRET: the site's updates arrive at
	// /<TrackerSecret>/update on the admin listener. 32 characters.
	TrackerSecret string `json:"tracker_secret"`
	// ReportSecret is Gazelle's TRACKER_REPORTKEY, for /<ReportSecret>/report.
	ReportSecret string `json:"report_secret"`

	// Announce is the interval clients are told to re-announce at.
	Announce Duration `json:"announce"`
	// MinAnnounce is the "min interval" clients must not announce faster than.
	MinAnnounce Duration `json:"min_announce"`
	// PeerLifetime is how long a peer that stops announcing stays in its
	// swarm. Zero means twice Announce.
	PeerLifetime Duration `json:"peer_lifetime"`
	// PurgeInactiveTorrents removes swarms once their last peer is gone.
	PurgeInactiveTorrents bool `json:"purge_inactive_torrents"`

	// DefaultNumWant is the number of peers given when a client sends no numwant.
	DefaultNumWant int `json:"default_num_want"`
	// MaxNumWant caps the number of peers any announce receives.
	MaxNumWant int `json:"max_num_want"`
	// MaxScrapeInfoHashes caps the info_hashes one scrape may ask for.
	MaxScrapeInfoHashes int `json:"max_scrape_infohashes"`

	// DualStackedPeers makes a client announcing over both IPv4 and IPv6
	// (BEP 7) one peer with two addresses, counted once.
	DualStackedPeers bool `json:"dual_stacked_peers"`
	// RespectAF gives announcers peers of their own address family only.
	RespectAF bool `json:"respect_af"`
	// PreferredSubnet puts peers in the announcer's subnet first, to keep
	// traffic local: subnets of PreferredIPv4Subnet / PreferredIPv6Subnet bits.
	PreferredSubnet     bool `json:"preferred_subnet"`
	PreferredIPv4Subnet int  `json:"preferred_ipv4_subnet"`
	PreferredIPv6Subnet int  `json:"preferred_ipv6_subnet"`

	// AllowIPSpoofing lets the "ip" query parameter set the peer's address.
	// Off by default: anyone could point a swarm at a third party.
	AllowIPSpoofing bool `json:"allow_ip_spoofing"`

	// TrustedProxies are the reverse proxies (CIDRs such as "127.0.0.1/32")
	// whose RealIPHeader is believed. Nobody else can set a peer's address.
	TrustedProxies []netip.Prefix `json:"trusted_proxies"`
	// RealIPHeader is the header a trusted proxy puts the client's address
	// in: "X-Forwarded-For" (the rightmost address that is not itself a
	// trusted proxy counts), "X-Real-IP", or "" to use the socket's address.
	RealIPHeader string `json:"real_ip_header"`
	// AnnounceJitter spreads re-announces: each answer's interval is
	// Announce plus a uniformly random [0, AnnounceJitter). Zero disables it.
	AnnounceJitter Duration `json:"announce_jitter"`

	// HTTP server limits.
	ReadTimeout    Duration `json:"http_read_timeout"`
	WriteTimeout   Duration `json:"http_write_timeout"`
	IdleTimeout    Duration `json:"http_idle_timeout"`
	MaxHeaderBytes int      `json:"http_max_header_bytes"`
	// ShutdownTimeout bounds how long a graceful shutdown waits for requests
	// in flight.
	ShutdownTimeout Duration `json:"shutdown_timeout"`

	// RateLimit caps how often one client may announce or scrape, over HTTP
	// and UDP alike (see RateLimit). Off by default.
	RateLimit RateLimit `json:"rate_limit"`
	// MaxConnections caps the public HTTP listener's open connections:
	// past it the listener stops accepting, and new connections wait in
	// the kernel's backlog until one closes, rather than being refused.
	MaxConnections int `json:"max_connections"`
	// AdminToken, when set, is required by every admin endpoint but
	// /check, as "Authorization: Bearer <AdminToken>". Ocelot's
	// secret-in-path routes (/<tracker_secret>/update, /<report_secret>/report)
	// carry their own secret and need no token. Empty: no token asked.
	AdminToken string `json:"admin_token"`

	// GCPercent is the garbage collector's target (GOGC), applied at start
	// unless the GOGC environment variable is set. Nearly all of a
	// tracker's memory is peer records without pointers, which the collector
	// never scans, so collecting often costs little CPU and saves most of
	// the headroom Go's default of 100 would keep.
	GCPercent int `json:"gc_percent"`

	// DebugPprof mounts Go's profiler (net/http/pprof) under /debug/pprof/
	// on the admin listener, never on the public one. Off by default:
	// profiles expose the process's internals and cost CPU while they run.
	DebugPprof bool `json:"debug_pprof"`

	// TorrentList, when set, is the public tracker's list of torrents it
	// serves ("allow") or refuses ("deny"), one info_hash a line in a file
	// that is re-read on SIGHUP and when it changes. Not in private mode,
	// where the site's torrents are the list.
	TorrentList *TorrentList `json:"torrent_list"`
	// ClientList, when set, is the public tracker's list of clients it
	// serves ("allow") or refuses ("deny"), by peer_id prefix. Not in
	// private mode, where the site's whitelist applies.
	ClientList *ClientList `json:"client_list"`
	// FullScrape answers /scrape without an info_hash with every torrent
	// (BEP 48), from a copy built at most every FullScrapeInterval off the
	// request path. Public mode only: a private tracker's torrents are the
	// site's business.
	FullScrape         bool     `json:"full_scrape"`
	FullScrapeInterval Duration `json:"full_scrape_interval"`
}

// The modes of torrent_list and client_list.
const (
	ListAllow = "allow" // only what is listed is served
	ListDeny  = "deny"  // what is listed is refused
)

// TorrentList is torrent_list: File holds one info_hash a line, 40 hex
// digits; blank lines and lines starting with # are skipped.
type TorrentList struct {
	Mode string `json:"mode"`
	File string `json:"file"`
}

// ClientList is client_list: a peer_id starting with one of Prefixes is
// listed.
type ClientList struct {
	Mode     string   `json:"mode"`
	Prefixes []string `json:"prefixes"`
}

// Default returns the configuration used for every key a file leaves out.
func Default() *Config {
	return &Config{
		Addr:                  ":6881",
		AdminAddr:             "127.0.0.1:6880",
		UDPAddr:               ":6881",
		Tracker:               DriverConfig{Name: "memory"},
		Backend:               DriverConfig{Name: "noop"},
		Announce:              Duration{30 * time.Minute},
		MinAnnounce:           Duration{15 * time.Minute},
		PurgeInactiveTorrents: true,
		DualStackedPeers:      true,
		PreferredIPv4Subnet:   24,
		PreferredIPv6Subnet:   64,
		DefaultNumWant:        50,
		MaxNumWant:            200,
		MaxScrapeInfoHashes:   64,
		ReadTimeout:           Duration{5 * time.Second},
		WriteTimeout:          Duration{5 * time.Second},
		IdleTimeout:           Duration{60 * time.Second},
		MaxHeaderBytes:        8 << 10,
		ShutdownTimeout:       Duration{10 * time.Second},
		MaxConnections:        16384,
		GCPercent:             25,
		DebugPprof:            false,
		FullScrapeInterval:    Duration{time.Minute},
	}
}

// Load reads the configuration file at path. An empty path gives Default.
func Load(path string) (*Config, error) {
	if path == "" {
		return Default(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Decode reads a JSON configuration on top of Default and validates it.
func Decode(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg := Default()
	if err := decodeStrict("config", data, cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// DecodeParams decodes a driver's raw params strictly into v, so that a
// driver reports unknown or mistyped keys the same way the main file does.
// prefix leads every error ("tracker.params", "backend.params").
func DecodeParams(prefix string, params json.RawMessage, v any) error {
	if t := bytes.TrimSpace(params); len(t) == 0 || string(t) == "null" {
		return nil
	}
	return decodeStrict(prefix, params, v)
}

// decodeStrict decodes the JSON object data into v, refusing unknown keys and
// trailing data. Its errors name the offending key: encoding/json does not
// for errors raised by a field's own UnmarshalJSON (Duration), so on failure
// each key is decoded alone to find the culprit.
func decodeStrict(prefix string, data []byte, v any) error {
	err := decodeInto(data, v)
	if err == nil {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return fmt.Errorf("%s: %w", prefix, err) // not an object at all: a syntax error
	}
	for key, value := range fields {
		one, _ := json.Marshal(map[string]json.RawMessage{key: value})
		probe := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if kerr := decodeInto(one, probe); kerr != nil {
			if strings.HasPrefix(kerr.Error(), "json: unknown field ") {
				return fmt.Errorf("%s: unknown key %q", prefix, key)
			}
			return fmt.Errorf("%s: %s: %v", prefix, key, strings.TrimPrefix(kerr.Error(), "json: "))
		}
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

func decodeInto(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// secretless holds the backend drivers whose site does not speak Ocelot's
// protocol, so that private mode needs no tracker_secret with them.
var secretless = map[string]bool{}

// NoTrackerSecret declares that backend driver name authenticates its
// site without Gazelle's tracker_secret (UNIT3D's api_key is a backend
// parameter). Drivers call it from init, before any configuration is
// validated.
func NoTrackerSecret(name string) { secretless[name] = true }

// Validate reports the first impossible value, naming its key.
func (c *Config) Validate() error {
	positive := []struct {
		key string
		d   time.Duration
	}{
		{"announce", c.Announce.Duration},
		{"min_announce", c.MinAnnounce.Duration},
		{"http_read_timeout", c.ReadTimeout.Duration},
		{"http_write_timeout", c.WriteTimeout.Duration},
		{"http_idle_timeout", c.IdleTimeout.Duration},
		{"shutdown_timeout", c.ShutdownTimeout.Duration},
		{"full_scrape_interval", c.FullScrapeInterval.Duration},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return fmt.Errorf("config: %s: must be positive, got %v", p.key, p.d)
		}
	}
	switch {
	case c.Addr == "":
		return errors.New("config: addr: must not be empty")
	case c.Tracker.Name == "":
		return errors.New("config: tracker.driver: must name a driver")
	case c.Backend.Name == "":
		return errors.New("config: backend.driver: must name a driver")
	case c.MinAnnounce.Duration > c.Announce.Duration:
		return fmt.Errorf("config: min_announce: %v is longer than announce (%v)", c.MinAnnounce, c.Announce)
	case c.PeerLifetime.Duration < 0:
		return fmt.Errorf("config: peer_lifetime: must not be negative, got %v", c.PeerLifetime)
	case c.PeerLifetime.Duration != 0 && c.PeerLifetime.Duration < c.Announce.Duration:
		return fmt.Errorf("config: peer_lifetime: %v is shorter than announce (%v): every peer would expire between announces", c.PeerLifetime, c.Announce)
	case c.DefaultNumWant < 0:
		return fmt.Errorf("config: default_num_want: must not be negative, got %d", c.DefaultNumWant)
	case c.MaxNumWant < 1:
		return fmt.Errorf("config: max_num_want: must be at least 1, got %d", c.MaxNumWant)
	case c.DefaultNumWant > c.MaxNumWant:
		return fmt.Errorf("config: default_num_want: %d is above max_num_want (%d)", c.DefaultNumWant, c.MaxNumWant)
	case c.MaxScrapeInfoHashes < 1:
		return fmt.Errorf("config: max_scrape_infohashes: must be at least 1, got %d", c.MaxScrapeInfoHashes)
	case c.Private && !secretless[c.Backend.Name] && len(c.TrackerSecret) != bittorrent.PasskeyLen:
		return fmt.Errorf("config: tracker_secret: private mode needs Gazelle's 32-character TRACKER_SECRET, got %d characters", len(c.TrackerSecret))
	case c.Private && c.ReportSecret != "" && len(c.ReportSecret) != bittorrent.PasskeyLen:
		return fmt.Errorf("config: report_secret: want 32 characters (Gazelle's TRACKER_REPORTKEY), got %d", len(c.ReportSecret))
	case c.Private && c.AdminAddr == "":
		return errors.New("config: admin_addr: private mode needs it: the site's updates arrive there")
	case c.PreferredIPv4Subnet < 0 || c.PreferredIPv4Subnet > 32:
		return fmt.Errorf("config: preferred_ipv4_subnet: want a prefix length from 0 to 32, got %d", c.PreferredIPv4Subnet)
	case c.PreferredIPv6Subnet < 0 || c.PreferredIPv6Subnet > 128:
		return fmt.Errorf("config: preferred_ipv6_subnet: want a prefix length from 0 to 128, got %d", c.PreferredIPv6Subnet)
	case c.MaxHeaderBytes < 1024:
		return fmt.Errorf("config: http_max_header_bytes: must be at least 1024, got %d", c.MaxHeaderBytes)
	case c.GCPercent < 5:
		return fmt.Errorf("config: gc_percent: want at least 5 (GOGC), got %d", c.GCPercent)
	case c.MaxConnections < 1:
		return fmt.Errorf("config: max_connections: must be at least 1, got %d", c.MaxConnections)
	case c.UDPSecret != "" && len(c.UDPSecret) < MinUDPSecretLen:
		return fmt.Errorf("config: udp_secret: want at least %d characters (or none, for a random key), got %d", MinUDPSecretLen, len(c.UDPSecret))
	}
	if c.UDPAddr != "" {
		if _, port, err := net.SplitHostPort(c.UDPAddr); err != nil || port == "" {
			return fmt.Errorf("config: udp_addr: %q: want host:port or :port (\"\" turns UDP off)", c.UDPAddr)
		}
	}
	if err := c.RateLimit.validate(); err != nil {
		return err
	}
	if err := c.validateLists(); err != nil {
		return err
	}
	return c.validateDeployment()
}

// RateLimit is a token bucket per client address: Burst requests at once,
// refilled at RequestsPerSecond. An IPv6 client's bucket is its /64
// network's, and behind trusted_proxies the client is the address the
// proxy names. A request over the limit is refused (over HTTP a failure
// reason with BEP 31's "retry in") and changes no swarm. Both zero, the
// default, turns it off.
type RateLimit struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	Burst             int     `json:"burst"`
}

// On reports whether the limit applies.
func (r RateLimit) On() bool { return r.RequestsPerSecond > 0 && r.Burst > 0 }

// The bounds of rate_limit's values: at least one request a day, and a
// burst whose refill time (Burst / RequestsPerSecond) fits the limiter's
// nanosecond clock many times over.
const (
	MinRequestsPerSecond = 1.0 / 86400
	MaxRequestsPerSecond = 1e6
	MaxBurst             = 10000
)

func (r RateLimit) validate() error {
	switch {
	case r.RequestsPerSecond == 0 && r.Burst == 0:
		return nil
	case r.RequestsPerSecond < MinRequestsPerSecond || r.RequestsPerSecond > MaxRequestsPerSecond:
		return fmt.Errorf("config: rate_limit.requests_per_second: want %g (one a day) to %g, or 0 with burst 0 for no limit, got %g",
			MinRequestsPerSecond, MaxRequestsPerSecond, r.RequestsPerSecond)
	case r.Burst < 1 || r.Burst > MaxBurst:
		return fmt.Errorf("config: rate_limit.burst: want 1 to %d with requests_per_second set, got %d", MaxBurst, r.Burst)
	}
	return nil
}

// MinUDPSecretLen is the shortest udp_secret accepted: 32 characters of a
// random string carry the 128 bits of the connection IDs' key.
const MinUDPSecretLen = 32

// The values real_ip_header may take.
const (
	XForwardedFor = "X-Forwarded-For"
	XRealIP       = "X-Real-IP"
)

// validateDeployment checks the reverse-proxy and jitter keys.
func (c *Config) validateDeployment() error {
	switch {
	case c.AnnounceJitter.Duration < 0:
		return fmt.Errorf("config: announce_jitter: must not be negative, got %v", c.AnnounceJitter)
	case c.AnnounceJitter.Duration >= c.Announce.Duration:
		return fmt.Errorf("config: announce_jitter: %v must be shorter than announce (%v)", c.AnnounceJitter, c.Announce)
	case c.PeerLifetime.Duration != 0 && c.PeerLifetime.Duration < c.Announce.Duration+c.AnnounceJitter.Duration:
		return fmt.Errorf("config: peer_lifetime: %v is shorter than announce plus announce_jitter (%v): peers would expire between announces", c.PeerLifetime, c.Announce.Duration+c.AnnounceJitter.Duration)
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return fmt.Errorf("config: trusted_proxies: %v: want an IPv4 or IPv6 CIDR such as \"127.0.0.1/32\" or \"::1/128\"", p)
		}
	}
	switch {
	case c.RealIPHeader != "" && !strings.EqualFold(c.RealIPHeader, XForwardedFor) && !strings.EqualFold(c.RealIPHeader, XRealIP):
		return fmt.Errorf("config: real_ip_header: %q: want %q, %q or \"\"", c.RealIPHeader, XForwardedFor, XRealIP)
	case c.RealIPHeader != "" && len(c.TrustedProxies) == 0:
		return fmt.Errorf("config: real_ip_header: %s is believed only from trusted_proxies, and there are none", c.RealIPHeader)
	case c.RealIPHeader == "" && len(c.TrustedProxies) != 0:
		return errors.New("config: trusted_proxies: without real_ip_header they have no effect: name the header they set")
	}
	return nil
}

// validateLists checks torrent_list, client_list and full_scrape.
func (c *Config) validateLists() error {
	mode := func(key, m string) error {
		if m != ListAllow && m != ListDeny {
			return fmt.Errorf("config: %s.mode: want %q or %q, got %q", key, ListAllow, ListDeny, m)
		}
		return nil
	}
	if l := c.TorrentList; l != nil {
		switch {
		case c.Private:
			return errors.New("config: torrent_list: a private tracker serves the site's torrents: leave it out")
		case l.File == "":
			return errors.New("config: torrent_list.file: must name the list's file")
		}
		if err := mode("torrent_list", l.Mode); err != nil {
			return err
		}
	}
	if l := c.ClientList; l != nil {
		if c.Private {
			return errors.New("config: client_list: a private tracker applies the site's whitelist: leave it out")
		}
		if err := mode("client_list", l.Mode); err != nil {
			return err
		}
		for i, p := range l.Prefixes {
			if p == "" || len(p) > bittorrent.PeerIDSize {
				return fmt.Errorf("config: client_list.prefixes[%d]: %q: want 1 to %d bytes of a peer_id", i, p, bittorrent.PeerIDSize)
			}
		}
	}
	if c.FullScrape && c.Private {
		return errors.New("config: full_scrape: a private tracker does not list the site's torrents to anyone: leave it off")
	}
	return nil
}

// reloadable are the keys a running tracker takes from a reloaded file
// (SIGHUP). Any other key needs a restart.
var reloadable = map[string]bool{
	"announce":                true,
	"min_announce":            true,
	"announce_jitter":         true,
	"peer_lifetime":           true,
	"purge_inactive_torrents": true,
	"default_num_want":        true,
	"max_num_want":            true,
	"max_scrape_infohashes":   true,
	"allow_ip_spoofing":       true,
	"trusted_proxies":         true,
	"real_ip_header":          true,
	"shutdown_timeout":        true,
	"rate_limit":              true, // the limiter reads it per request
	"admin_token":             true, // the admin listener reads it per request
	// The UDP frontend accepts the previous secret's IDs for one lifetime
	// of an ID after a reload, so changing it refuses no client.
	"udp_secret": true,
	// The lists are re-read on every reload (the torrent list's file too);
	// the frontends read full_scrape per request.
	"torrent_list":         true,
	"client_list":          true,
	"full_scrape":          true,
	"full_scrape_interval": true,
}

// Reloadable reports whether a running tracker applies key on a reload.
func Reloadable(key string) bool { return reloadable[key] }

// Reload returns the configuration a running tracker moves to when its file
// now reads next: a copy of c with next's reloadable keys. needRestart lists
// the other keys whose values differ: they keep c's value until a restart.
func (c *Config) Reload(next *Config) (merged *Config, needRestart []string) {
	m := *c
	dst, src, old := reflect.ValueOf(&m).Elem(), reflect.ValueOf(next).Elem(), reflect.ValueOf(c).Elem()
	for i := range dst.NumField() {
		key, _, _ := strings.Cut(dst.Type().Field(i).Tag.Get("json"), ",")
		switch {
		case reloadable[key]:
			dst.Field(i).Set(src.Field(i))
		case !sameValue(old.Field(i).Interface(), src.Field(i).Interface()):
			needRestart = append(needRestart, key)
		}
	}
	return &m, needRestart
}

// sameValue reports whether a key's value in two loads of a file is the
// same. A driver's params are raw JSON, compared as JSON: spacing and line
// breaks a reloaded file changed do not ask for a restart.
func sameValue(a, b any) bool {
	da, ok := a.(DriverConfig)
	if !ok {
		return reflect.DeepEqual(a, b)
	}
	db := b.(DriverConfig)
	return da.Name == db.Name && bytes.Equal(compactJSON(da.Params), compactJSON(db.Params))
}

// compactJSON is raw without insignificant white space (raw itself if it
// is not JSON: then only the same bytes are the same value).
func compactJSON(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// Lifetime is how long a silent peer stays in its swarm.
func (c *Config) Lifetime() time.Duration {
	if c.PeerLifetime.Duration > 0 {
		return c.PeerLifetime.Duration
	}
	return 2 * c.Announce.Duration
}
