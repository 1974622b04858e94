package chihaya

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/config"
)

// reloadingBackend counts its reloads.
type reloadingBackend struct{ reloads chan struct{} }

func (reloadingBackend) RecordAnnounce(backend.Announce) error { return nil }
func (reloadingBackend) Close() error                          { return nil }
func (b reloadingBackend) Reload(context.Context) error        { b.reloads <- struct{}{}; return nil }

type reloadingDriver struct{ b reloadingBackend }

func (d reloadingDriver) Open(json.RawMessage) (backend.Conn, error) { return d.b, nil }

func TestSIGUSR1ReloadsTheSite(t *testing.T) {
	b := reloadingBackend{reloads: make(chan struct{}, 1)}
	backend.Register("test-reloading", reloadingDriver{b})
	cfg := config.Default()
	cfg.Addr, cfg.AdminAddr, cfg.Backend.Name = "127.0.0.1:0", "", "test-reloading"
	usr1 := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, func(net.Addr, net.Addr) { close(ready) }, runOptions{usr1: usr1})
	}()
	<-ready
	usr1 <- syscall.SIGUSR1
	select {
	case <-b.reloads:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGUSR1 did not reach the backend's Reload")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
