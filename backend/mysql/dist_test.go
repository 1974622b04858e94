package mysql

import (
	"testing"

	"github.com/chihaya/chihaya/config"
)

// The example configuration for a Gazelle site loads, and its backend
// parameters are valid.
func TestDistGazelleConfig(t *testing.T) {
	cfg, err := config.Load("../../dist/gazelle.json")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Private || cfg.Backend.Name != "mysql" {
		t.Fatalf("private %v, backend %q", cfg.Private, cfg.Backend.Name)
	}
	p, err := ParseParams(cfg.Backend.Params)
	if err != nil {
		t.Fatal(err)
	}
	if p.SiteSecret != cfg.TrackerSecret {
		t.Error("site_secret is not the tracker_secret")
	}
}
