// Package chihaya is the tracker daemon as a library call: Boot parses the
// command line, loads the configuration, opens the drivers it names, serves
// until SIGINT or SIGTERM and shuts down gracefully.
//
// A binary with other drivers blank-imports them and calls Boot:
//
//	import (
//		"github.com/chihaya/chihaya"
//		_ "example.com/mytracker/tracker/mystore"
//	)
//
//	func main() { chihaya.Boot() }
//
// The default drivers, "memory" and "noop", are always available.
package chihaya

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	nethttp "net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/chihaya/chihaya/backend"
	_ "github.com/chihaya/chihaya/backend/noop" // the default backend
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/http"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	_ "github.com/chihaya/chihaya/tracker/memory" // the default store
	"github.com/golang/glog"
)

// Boot runs the daemon as the command line says, and exits the process.
func Boot() {
	configPath := flag.String("config", "", "path to the JSON configuration file (none: built-in defaults)")
	// A daemon under systemd logs to stderr; -logtostderr=false restores
	// glog's log files.
	flag.Set("logtostderr", "true")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := func() error {
		cfg, err := config.Load(*configPath)
		if err != nil {
			return err
		}
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(cfg.GCPercent)
		}
		return Run(ctx, cfg, nil)
	}()
	if err != nil {
		glog.Error(err)
		glog.Flush()
		os.Exit(1)
	}
	glog.Info("shut down cleanly")
	glog.Flush()
}

// peering turns the configuration's peer-selection keys into the store's.
func peering(cfg *config.Config) tracker.Peering {
	p := tracker.Peering{DualStacked: cfg.DualStackedPeers, RespectAF: cfg.RespectAF}
	if cfg.PreferredSubnet {
		p.PreferIPv4Bits, p.PreferIPv6Bits = cfg.PreferredIPv4Subnet, cfg.PreferredIPv6Subnet
	}
	return p
}

// Listening tells a caller of Run where the listeners are (the admin one is
// nil when disabled), once both accept connections.
type Listening func(public, admin net.Addr)

// Run opens the drivers cfg names and serves until ctx is done, then drains
// requests in flight and closes the drivers. An error opening anything is
// returned before any listener accepts a connection.
func Run(ctx context.Context, cfg *config.Config, listening Listening) (err error) {
	pool, err := tracker.Open(cfg.Tracker.Name, tracker.Options{
		Params:  cfg.Tracker.Params,
		Private: cfg.Private,
		Peering: peering(cfg),
	})
	if err != nil {
		return err
	}
	be, err := backend.Open(cfg.Backend.Name, cfg.Backend.Params)
	if err != nil {
		pool.Close()
		return err
	}
	if err := tracker.CheckBackend(cfg, be); err != nil {
		pool.Close()
		be.Close()
		return err
	}
	st := stats.New(cfg.StatsBufferSize)
	defer st.Close()
	tkr := tracker.New(cfg, pool, be, st)
	defer func() {
		if cerr := tkr.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing drivers: %w", cerr)
		}
	}()

	pub, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr: %w", err)
	}
	srv := http.NewServer(cfg, tkr, st)
	var adm net.Listener
	admin := http.NewAdmin(srv)
	admin.Handler = srv.SiteUpdates(admin.Handler)
	if cfg.AdminAddr != "" {
		if adm, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			pub.Close()
			return fmt.Errorf("admin_addr: %w", err)
		}
	}

	reaperCtx, stopReaper := context.WithCancel(ctx)
	defer stopReaper()
	go tkr.RunReaper(reaperCtx)

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(pub) }()
	glog.Infof("serving announces on %s", pub.Addr())
	var adminAddr net.Addr
	if adm != nil {
		go func() {
			if err := admin.Serve(adm); err != nil && !errors.Is(err, nethttp.ErrServerClosed) {
				errc <- fmt.Errorf("admin: %w", err)
			}
		}()
		adminAddr = adm.Addr()
		glog.Infof("serving admin on %s", adminAddr)
	}
	if listening != nil {
		listening(pub.Addr(), adminAddr)
	}

	select {
	case <-ctx.Done():
		glog.Info("shutting down: draining requests in flight")
	case err = <-errc:
		if err != nil {
			err = fmt.Errorf("serving: %w", err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", serr)
	}
	admin.Shutdown(shutdownCtx)
	return err
}
