// Package chihaya is the tracker daemon as a library call: Boot parses the
// command line, loads the configuration, opens the drivers it names, serves
// until SIGINT or SIGTERM and shuts down gracefully. SIGHUP reloads the
// configuration file's reloadable keys (see config.Reloadable).
//
// Under systemd it reports readiness, reloads and shutdown (Type=notify)
// and serves on the sockets a socket unit passes (see internal/systemd).
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
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"syscall"
	"time"

	"github.com/chihaya/chihaya/backend"
	_ "github.com/chihaya/chihaya/backend/noop" // the default backend
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/http"
	"github.com/chihaya/chihaya/internal/systemd"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	_ "github.com/chihaya/chihaya/tracker/memory" // the default store
	"github.com/chihaya/chihaya/udp"
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
	// Caught from the start: SIGHUP's default action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	usr1 := make(chan os.Signal, 1) // the backend re-reads the site's lists, as Ocelot does
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	err := func() error {
		cfg, err := config.Load(*configPath)
		if err != nil {
			return err
		}
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(cfg.GCPercent)
			go keepGCHeadroom(ctx, cfg.GCPercent)
		}
		return run(ctx, cfg, nil, runOptions{configPath: *configPath, hup: hup, usr1: usr1})
	}()
	if err != nil {
		glog.Error(err)
		glog.Flush()
		os.Exit(1)
	}
	glog.Info("shut down cleanly")
	glog.Flush()
}

// minGCHeadroom is the least heap growth between two collections: Go's
// own at GOGC=100. The peers are outside the heap (tracker/memory's
// arenas), so the heap is small and holds nothing to scan, and collecting
// after every 4 MiB of request garbage costs little; a larger floor would
// cost its size in resident memory.
const minGCHeadroom = 4 << 20

// gcPercent is the collector's target for a live heap of live bytes:
// percent, unless that would leave less than minGCHeadroom of headroom.
// Go's own floor (4 MiB at GOGC=100) shrinks with the percentage, so at
// gc_percent 25 a small tracker's heap was collected after every megabyte
// (10% of its throughput, measured at 20k peers); a large one, where the
// percentage saves memory, keeps it.
func gcPercent(percent int, live uint64) int {
	if live == 0 {
		return percent
	}
	return max(percent, int(min(minGCHeadroom*100/live, 1000)))
}

// keepGCHeadroom applies gcPercent to the live heap every 10 seconds
// until ctx ends.
func keepGCHeadroom(ctx context.Context, percent int) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	last := percent
	for {
		metrics.Read(sample)
		if p := gcPercent(percent, sample[0].Value.Uint64()); p != last {
			debug.SetGCPercent(p)
			last = p
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// peering turns the configuration's peer-selection keys into the store's.
func peering(cfg *config.Config) tracker.Peering {
	p := tracker.Peering{DualStacked: cfg.DualStackedPeers, RespectAF: cfg.RespectAF}
	if cfg.PreferredSubnet {
		p.PreferIPv4Bits, p.PreferIPv6Bits = cfg.PreferredIPv4Subnet, cfg.PreferredIPv6Subnet
	}
	return p
}

// Addrs are where the daemon serves: the public HTTP listener, the admin
// listener and the UDP socket. Admin and UDP are nil when turned off.
type Addrs struct {
	Public, Admin, UDP net.Addr
}

// Listening tells a caller of Run where the daemon serves, once every
// listener accepts connections.
type Listening func(Addrs)

// Run opens the drivers cfg names and serves until ctx is done, then drains
// requests in flight and closes the drivers. An error opening anything is
// returned before any listener accepts a connection.
//
// Under systemd (socket activation) Run serves on the sockets it was passed
// (see internal/systemd) instead of listening on addr, admin_addr and
// udp_addr, and it notifies readiness and shutdown to $NOTIFY_SOCKET.
func Run(ctx context.Context, cfg *config.Config, listening Listening) error {
	return run(ctx, cfg, listening, runOptions{})
}

// runOptions are what Boot adds to Run: reloads on SIGHUP and SIGUSR1.
type runOptions struct {
	configPath string           // the file a reload reads
	hup        <-chan os.Signal // a value asks for a reload; nil: never
	usr1       <-chan os.Signal // a value asks the backend to reload the site's lists
}

func run(ctx context.Context, cfg *config.Config, listening Listening, opts runOptions) (err error) {
	pool, err := tracker.Open(cfg.Tracker.Name, tracker.Options{
		Params:   cfg.Tracker.Params,
		Private:  cfg.Private,
		Lifetime: cfg.Lifetime(),
		Peering:  peering(cfg),
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
	st := stats.New()
	defer st.Close()
	tkr := tracker.New(cfg, pool, be, st)
	if f, ok := be.(backend.StatsFeeder); ok {
		f.FeedStats(st) // a backend keeping its own swarms: those loaded, its reaps
	}
	defer func() {
		if cerr := tkr.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing drivers: %w", cerr)
		}
	}()
	if err := tkr.LoadLists(ctx); err != nil {
		return err
	}

	socks, err := listen(cfg)
	if err != nil {
		return err
	}
	pub, adm := socks.Public, socks.Admin
	srv := http.NewServer(tkr, st)
	admin := http.NewAdmin(tkr, st)
	udpSrv, err := udp.NewServer(cfg, tkr, st)
	if err != nil {
		socks.Close()
		return err
	}

	reaperCtx, stopReaper := context.WithCancel(ctx)
	defer stopReaper()
	go tkr.RunReaper(reaperCtx)
	go tkr.RunLists(reaperCtx, listCheckInterval)

	errc := make(chan error, 2+len(socks.UDP))
	go func() { errc <- srv.Serve(pub) }()
	addrs := Addrs{Public: pub.Addr()}
	status := "serving announces on " + pub.Addr().String()
	glog.Info(status)
	for _, c := range socks.UDP {
		go func() {
			if err := udpSrv.Serve(c); err != nil {
				errc <- fmt.Errorf("udp: %w", err)
			}
		}()
	}
	if len(socks.UDP) > 0 {
		addrs.UDP = socks.UDP[0].LocalAddr()
		glog.Infof("serving UDP announces on %s (%d sockets)", addrs.UDP, len(socks.UDP))
		status += " and udp://" + addrs.UDP.String()
	}
	if adm != nil {
		go func() {
			if err := admin.Serve(adm); err != nil {
				errc <- fmt.Errorf("admin: %w", err)
			}
		}()
		addrs.Admin = adm.Addr()
		glog.Infof("serving admin on %s", addrs.Admin)
	}
	if listening != nil {
		listening(addrs)
	}
	notify(systemd.Ready + "\nSTATUS=" + status)

	if opts.hup != nil || opts.usr1 != nil {
		go func() {
			for {
				select {
				case <-reaperCtx.Done():
					return
				case <-opts.hup:
					reload(tkr, opts.configPath)
				case <-opts.usr1:
					reloadSite(reaperCtx, be)
				}
			}
		}()
	}

	select {
	case <-ctx.Done():
		glog.Info("shutting down: draining requests in flight")
	case err = <-errc:
		if err != nil {
			err = fmt.Errorf("serving: %w", err)
		}
	}
	notify(systemd.Stopping)
	admin.Drain() // /check fails from now on, while the listeners drain
	shutdownCtx, cancel := context.WithTimeout(context.Background(), tkr.Config().ShutdownTimeout.Duration)
	defer cancel()
	udpDone := make(chan error, 1)
	go func() { udpDone <- udpSrv.Shutdown(shutdownCtx) }()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", serr)
	}
	if serr := <-udpDone; serr != nil && err == nil {
		err = fmt.Errorf("shutdown: udp: %w", serr)
	}
	admin.Shutdown(shutdownCtx)
	return err
}

// listen returns the sockets to serve on: those systemd passed, if it
// passed them, and new ones on addr, admin_addr and udp_addr for the rest.
// Admin is nil when admin_addr is empty, UDP when udp_addr is.
func listen(cfg *config.Config) (*systemd.Sockets, error) {
	socks, err := systemd.Listeners()
	if err != nil {
		return nil, err
	}
	if socks == nil {
		socks = &systemd.Sockets{}
	}
	if socks.Public != nil {
		glog.Infof("addr: serving on the socket systemd passed (%s)", socks.Public.Addr())
	} else if socks.Public, err = net.Listen("tcp", cfg.Addr); err != nil {
		socks.Close()
		return nil, fmt.Errorf("addr: %w", err)
	}
	switch {
	case socks.Admin != nil && cfg.AdminAddr == "":
		glog.Warningf("admin_addr is empty: not serving the admin socket systemd passed (%s)", socks.Admin.Addr())
		socks.Admin.Close()
		socks.Admin = nil
	case socks.Admin != nil:
		glog.Infof("admin_addr: serving on the socket systemd passed (%s)", socks.Admin.Addr())
	case cfg.AdminAddr != "":
		if socks.Admin, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			socks.Close()
			return nil, fmt.Errorf("admin_addr: %w", err)
		}
	}
	switch {
	case len(socks.UDP) > 0 && cfg.UDPAddr == "":
		glog.Warningf("udp_addr is empty: not serving the UDP socket systemd passed (%s)", socks.UDP[0].LocalAddr())
		for _, c := range socks.UDP {
			c.Close()
		}
		socks.UDP = nil
	case len(socks.UDP) > 0:
		glog.Infof("udp_addr: serving on the socket systemd passed (%s)", socks.UDP[0].LocalAddr())
	case cfg.UDPAddr != "":
		if socks.UDP, err = udp.Listen(cfg.UDPAddr); err != nil {
			socks.Close()
			return nil, err // udp.Listen names the key
		}
	}
	return socks, nil
}

// notify tells systemd state; a failure is logged, never fatal.
func notify(state string) {
	if err := systemd.Notify(state); err != nil {
		glog.Warning(err)
	}
}

// reloadSite has a backend that knows a site re-read its users, torrents
// and whitelist (SIGUSR1, as with Ocelot).
func reloadSite(ctx context.Context, be backend.Conn) {
	r, ok := be.(backend.Reloader)
	if !ok {
		glog.Info("SIGUSR1: the backend has no site lists to reload")
		return
	}
	if err := r.Reload(ctx); err != nil {
		glog.Errorf("SIGUSR1: reloading the site's lists: %v; the old lists stay", err)
		return
	}
	glog.Info("SIGUSR1: reloaded the site's lists")
}

// listCheckInterval is how often the torrent list's file is checked for
// changes (its modification time and size).
const listCheckInterval = 2 * time.Second

// reloadLists re-reads the torrent list (SIGHUP). A list that does not
// load is logged and the one read last stays.
func reloadLists(tkr *tracker.Tracker) {
	if err := tkr.ReloadLists(context.Background()); err != nil {
		glog.Errorf("SIGHUP: %v; the list read last stays", err)
	}
}

// reload re-reads the configuration file and applies its reloadable keys
// to the running tracker, swarms untouched. A file that does not load
// changes nothing; keys that need a restart keep their running values.
func reload(tkr *tracker.Tracker, path string) {
	notify(systemd.Reloading)
	defer notify(systemd.Ready)
	defer reloadLists(tkr) // the list's file is re-read whatever becomes of the configuration's
	if path == "" {
		glog.Info("SIGHUP: no -config file to reload: the built-in defaults stay")
		return
	}
	next, err := config.Load(path)
	if err != nil {
		glog.Errorf("SIGHUP: not reloaded, the running configuration stays: %v", err)
		return
	}
	merged, restart := tkr.Config().Reload(next)
	if err := merged.Validate(); err != nil { // cannot happen: both halves are valid
		glog.Errorf("SIGHUP: not reloaded, the running configuration stays: %v", err)
		return
	}
	if len(restart) > 0 {
		glog.Warningf("SIGHUP: %s changed in %s: only a restart applies such keys; the running values stay", strings.Join(restart, ", "), path)
	}
	tkr.Reload(merged)
	glog.Infof("SIGHUP: reloaded %s", path)
}
