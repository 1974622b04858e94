// Package noop registers the "noop" backend, which discards every announce:
// the backend of a public tracker.
package noop

import (
	"encoding/json"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/config"
)

func init() { backend.Register("noop", driver{}) }

type driver struct{}

// Open accepts no parameters.
func (driver) Open(params json.RawMessage) (backend.Conn, error) {
	if err := config.DecodeParams("backend.params", params, &struct{}{}); err != nil {
		return nil, err
	}
	return conn{}, nil
}

type conn struct{}

func (conn) RecordAnnounce(backend.Announce) error { return nil }
func (conn) Close() error                          { return nil }
