package unit3d

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chihaya/chihaya/config"
	"github.com/go-sql-driver/mysql"
)

// Params are the backend's parameters ("backend.params"). Every
// UNIT3D-Announce setting a site may have changed has one (the mapping
// table is in docs/replacing-unit3d.md); the defaults are UNIT3D-Announce's.
type Params struct {
	// DSN is the go-sql-driver/mysql data source name of UNIT3D's database
	// (DATABASE_URL), e.g. "unit3d:secret@tcp(127.0.0.1:3306)/unit3d".
	// Required.
	DSN string `json:"dsn"`
	// APIKey is the site's TRACKER_KEY (APIKEY): the site's API lives
	// under /announce/<api_key>/ on the admin listener. At least 32
	// characters. Required.
	APIKey string `json:"api_key"`
	// FlushInterval is how often queued rows are written
	// (FLUSH_INTERVAL_MILLISECONDS), default 3s.
	FlushInterval config.Duration `json:"flush_interval"`

	NumwantDefault      int             `json:"numwant_default"`       // NUMWANT_DEFAULT, 15
	NumwantMax          int             `json:"numwant_max"`           // NUMWANT_MAX, 15
	AnnounceMin         config.Duration `json:"announce_min"`          // ANNOUNCE_MIN, 1800s
	AnnounceMinEnforced config.Duration `json:"announce_min_enforced"` // ANNOUNCE_MIN_ENFORCED, 1740s
	AnnounceMax         config.Duration `json:"announce_max"`          // ANNOUNCE_MAX, 3600s
	UploadFactor        uint8           `json:"upload_factor"`         // UPLOAD_FACTOR, 100
	DownloadFactor      uint8           `json:"download_factor"`       // DOWNLOAD_FACTOR, 100
	PeerExpiryInterval  config.Duration `json:"peer_expiry_interval"`  // PEER_EXPIRY_INTERVAL, 1800s
	ActivePeerTTL       config.Duration `json:"active_peer_ttl"`       // ACTIVE_PEER_TTL, 7200s
	InactivePeerTTL     config.Duration `json:"inactive_peer_ttl"`     // INACTIVE_PEER_TTL, 21 days
	// MaxPeersPerTorrentPerUser is MAX_PEERS_PER_TORRENT_PER_USER, 3.
	MaxPeersPerTorrentPerUser uint16 `json:"max_peers_per_torrent_per_user"`
	// ConnectivityCheck is IS_CONNECTIVITY_CHECK_ENABLED: a TCP connect to
	// each announcing peer (500 ms at most), cached per address and port
	// for ConnectivityCheckInterval (CONNECTIVITY_CHECK_INTERVAL; negative:
	// never cached).
	ConnectivityCheck         bool            `json:"connectivity_check"`
	ConnectivityCheckInterval config.Duration `json:"connectivity_check_interval"`
	// RequirePeerConnectivity is REQUIRE_PEER_CONNECTIVITY.
	RequirePeerConnectivity bool `json:"require_peer_connectivity"`
	// AnnounceLogging is IS_ANNOUNCE_LOGGING_ENABLED: every successful
	// announce is also written to the announces table.
	AnnounceLogging bool `json:"announce_logging"`
	// SeedListRateLimits and LeechListRateLimits are
	// USER_RECEIVE_SEED_LIST_RATE_LIMITS and ..._LEECH_..., in their
	// format: "window=max;window=max" (seconds, may be fractions).
	SeedListRateLimits  string `json:"user_receive_seed_list_rate_limits"`
	LeechListRateLimits string `json:"user_receive_leech_list_rate_limits"`
	// The donor overrides (unset: none).
	DonorImmunityOverride               *bool  `json:"donor_immunity_override"`
	LifetimeDonorImmunityOverride       *bool  `json:"lifetime_donor_immunity_override"`
	DonorUploadFactorOverride           *uint8 `json:"donor_upload_factor_override"`
	DonorDownloadFactorOverride         *uint8 `json:"donor_download_factor_override"`
	LifetimeDonorUploadFactorOverride   *uint8 `json:"lifetime_donor_upload_factor_override"`
	LifetimeDonorDownloadFactorOverride *uint8 `json:"lifetime_donor_download_factor_override"`

	seedRates, leechRates []rateLimit // parsed
}

// rateLimit is one window of a peer-list rate limit.
type rateLimit struct{ window, max float64 }

// Defaults of the parameters left out: UNIT3D-Announce's .env.example.
const (
	DefaultFlushInterval       = 3 * time.Second
	DefaultSeedListRateLimits  = "60=10;900=25;7200=125;86400=500;604800=2500"
	DefaultLeechListRateLimits = "60=20;900=50;7200=250;86400=1000;604800=5000"
	// MinAPIKeyLen is the shortest api_key accepted (UNIT3D-Announce's).
	MinAPIKeyLen = 32
)

func defaults() Params {
	sec := func(n int) config.Duration { return config.Duration{Duration: time.Duration(n) * time.Second} }
	return Params{
		FlushInterval:             config.Duration{Duration: DefaultFlushInterval},
		NumwantDefault:            15,
		NumwantMax:                15,
		AnnounceMin:               sec(1800),
		AnnounceMinEnforced:       sec(1740),
		AnnounceMax:               sec(3600),
		UploadFactor:              100,
		DownloadFactor:            100,
		PeerExpiryInterval:        sec(1800),
		ActivePeerTTL:             sec(7200),
		InactivePeerTTL:           sec(1814400),
		MaxPeersPerTorrentPerUser: 3,
		ConnectivityCheckInterval: sec(1800),
		SeedListRateLimits:        DefaultSeedListRateLimits,
		LeechListRateLimits:       DefaultLeechListRateLimits,
	}
}

// ParseParams decodes and checks raw parameters, with UNIT3D-Announce's
// rules. Every error names its key.
func ParseParams(raw json.RawMessage) (Params, error) {
	p := defaults()
	const prefix = "backend.params"
	if err := config.DecodeParams(prefix, raw, &p); err != nil {
		return p, err
	}
	switch {
	case p.DSN == "":
		return p, fmt.Errorf("%s: dsn: required (e.g. \"unit3d:password@tcp(127.0.0.1:3306)/unit3d\")", prefix)
	case len(p.APIKey) < MinAPIKeyLen:
		return p, fmt.Errorf("%s: api_key: want the site's TRACKER_KEY, at least %d characters, got %d", prefix, MinAPIKeyLen, len(p.APIKey))
	case strings.Contains(p.APIKey, "/"):
		return p, fmt.Errorf("%s: api_key: must not contain '/' (it is a URL path segment)", prefix)
	case p.FlushInterval.Duration <= 0:
		return p, fmt.Errorf("%s: flush_interval: must be positive, got %v", prefix, p.FlushInterval)
	case p.NumwantDefault < 0:
		return p, fmt.Errorf("%s: numwant_default: must not be negative, got %d", prefix, p.NumwantDefault)
	case p.NumwantMax < 0:
		return p, fmt.Errorf("%s: numwant_max: must not be negative, got %d", prefix, p.NumwantMax)
	case p.AnnounceMinEnforced.Duration > p.AnnounceMin.Duration:
		return p, fmt.Errorf("%s: announce_min_enforced: %v is above announce_min (%v)", prefix, p.AnnounceMinEnforced, p.AnnounceMin)
	case p.AnnounceMin.Duration > p.AnnounceMax.Duration:
		return p, fmt.Errorf("%s: announce_min: %v is above announce_max (%v)", prefix, p.AnnounceMin, p.AnnounceMax)
	case p.AnnounceMin.Duration < 0:
		return p, fmt.Errorf("%s: announce_min: must not be negative, got %v", prefix, p.AnnounceMin)
	case p.PeerExpiryInterval.Duration < time.Second:
		return p, fmt.Errorf("%s: peer_expiry_interval: want at least 1s, got %v", prefix, p.PeerExpiryInterval)
	case p.ActivePeerTTL.Duration <= p.AnnounceMax.Duration:
		return p, fmt.Errorf("%s: active_peer_ttl: %v must be above announce_max (%v)", prefix, p.ActivePeerTTL, p.AnnounceMax)
	case p.InactivePeerTTL.Duration < 0:
		return p, fmt.Errorf("%s: inactive_peer_ttl: must not be negative, got %v", prefix, p.InactivePeerTTL)
	}
	if _, err := mysql.ParseDSN(p.DSN); err != nil {
		return p, fmt.Errorf("%s: dsn: %v", prefix, err)
	}
	var err error
	if p.seedRates, err = parseRateLimits(p.SeedListRateLimits); err != nil {
		return p, fmt.Errorf("%s: user_receive_seed_list_rate_limits: %v", prefix, err)
	}
	if p.leechRates, err = parseRateLimits(p.LeechListRateLimits); err != nil {
		return p, fmt.Errorf("%s: user_receive_leech_list_rate_limits: %v", prefix, err)
	}
	return p, nil
}

// parseRateLimits reads "window=max;window=max" (spaces trimmed, floats
// allowed), UNIT3D-Announce's format.
func parseRateLimits(s string) ([]rateLimit, error) {
	var out []rateLimit
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		w, m, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want window=max", part)
		}
		window, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
		if err != nil || window <= 0 {
			return nil, fmt.Errorf("%q: window must be a positive number of seconds", part)
		}
		limit, err := strconv.ParseFloat(strings.TrimSpace(m), 64)
		if err != nil || limit < 0 {
			return nil, fmt.Errorf("%q: max must be a number, at least 0", part)
		}
		out = append(out, rateLimit{window, limit})
	}
	return out, nil
}
