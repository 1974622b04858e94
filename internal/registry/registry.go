// Package registry is the name-to-driver table behind tracker.Register and
// backend.Register, in the style of database/sql's.
package registry

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// ErrUnknown is wrapped by Lookup for a name nobody registered.
var ErrUnknown = errors.New("unknown driver")

// Registry maps driver names to drivers of one kind. The zero value is not
// usable; call New.
type Registry[D any] struct {
	kind    string // "tracker" or "backend": leads every message
	mu      sync.RWMutex
	drivers map[string]D
}

// New returns an empty registry whose messages name kind.
func New[D any](kind string) *Registry[D] {
	return &Registry[D]{kind: kind, drivers: map[string]D{}}
}

// Register makes driver available under name. It panics if driver is nil or
// the name is taken: both are programming errors, found at start-up.
func (r *Registry[D]) Register(name string, driver D) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if any(driver) == nil {
		panic(r.kind + ": Register driver is nil")
	}
	if _, dup := r.drivers[name]; dup {
		panic(r.kind + ": Register called twice for driver " + name)
	}
	r.drivers[name] = driver
}

// Lookup returns the driver registered as name.
func (r *Registry[D]) Lookup(name string) (D, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.drivers[name]
	if !ok {
		return d, fmt.Errorf("%s.driver: %w %q (forgotten import?)", r.kind, ErrUnknown, name)
	}
	return d, nil
}

// Names returns the registered names, sorted.
func (r *Registry[D]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.drivers))
	for name := range r.drivers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
