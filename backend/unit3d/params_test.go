package unit3d_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/backend/unit3d"
	"github.com/chihaya/chihaya/config"
)

func TestParseParams(t *testing.T) {
	const dsn = `"dsn": "u:p@tcp(127.0.0.1:3306)/unit3d"`
	const key = `"api_key": "0123456789abcdef0123456789abcdef"`
	for _, tc := range []struct {
		params, err string
	}{
		{`{` + dsn + `, ` + key + `}`, ""},
		{`{` + key + `}`, "dsn: required"},
		{`{` + dsn + `}`, "api_key: want the site's TRACKER_KEY"},
		{`{` + dsn + `, "api_key": "short"}`, "api_key: want"},
		{`{` + dsn + `, "api_key": "0123456789abcdef0123456789abcdef/x"}`, "api_key: must not contain '/'"},
		{`{` + dsn + `, ` + key + `, "flush_interval": "0s"}`, "flush_interval: must be positive"},
		{`{` + dsn + `, ` + key + `, "announce_min_enforced": "1900s"}`, "announce_min_enforced"},
		{`{` + dsn + `, ` + key + `, "announce_min": "4000s", "announce_min_enforced": "1s"}`, "announce_min: 1h6m40s is above announce_max"},
		{`{` + dsn + `, ` + key + `, "active_peer_ttl": "3600s"}`, "active_peer_ttl"},
		{`{` + dsn + `, ` + key + `, "peer_expiry_interval": "0s"}`, "peer_expiry_interval"},
		{`{` + dsn + `, ` + key + `, "upload_factor": 300}`, "upload_factor"},
		{`{` + dsn + `, ` + key + `, "user_receive_seed_list_rates_limits": "1"}`, "unknown"},
		{`{` + dsn + `, ` + key + `, "user_receive_seed_list_rate_limits": "60:10"}`, "want window=max"},
		{`{` + dsn + `, ` + key + `, "user_receive_leech_list_rate_limits": " 60 = 1.5 ; 900=3"}`, ""},
		{`{` + dsn + `, ` + key + `, "donor_download_factor_override": 0, "lifetime_donor_immunity_override": true}`, ""},
		{`{"dsn": "not a dsn", ` + key + `}`, "dsn:"},
	} {
		_, err := unit3d.ParseParams(json.RawMessage(tc.params))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseParams(%s) = %v, want %q", tc.params, err, tc.err)
		}
	}
}

// Private mode with the unit3d driver needs no tracker_secret (Gazelle's);
// the site's key is the backend's api_key.
func TestNoTrackerSecret(t *testing.T) {
	for _, tc := range []struct {
		driver string
		ok     bool
	}{{"unit3d", true}, {"mysql", false}} {
		cfg, err := config.Decode(strings.NewReader(`{"private_tracker": true, "admin_addr": "127.0.0.1:6880", "backend": {"driver": "` + tc.driver + `"}}`))
		if err == nil {
			err = cfg.Validate()
		}
		if (err == nil) != tc.ok {
			t.Errorf("private mode, driver %s, no tracker_secret: %v", tc.driver, err)
		}
	}
}
