package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	"github.com/golang/glog"
	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
)

// pprofWriteTimeout is the admin listener's write timeout when the profiler
// is on: net/http/pprof refuses a profile or trace that would last longer
// than the server's write timeout (30 seconds by default).
const pprofWriteTimeout = 5 * time.Minute

// Admin is the operators' listener: /check for health checks, /stats for
// the counters as JSON, /metrics for Prometheus, Go's profiler under
// /debug/pprof/ with debug_pprof, and, for a private tracker whose backend
// takes a site's pushed changes, Ocelot's update and report routes. It
// belongs on a private address (admin_addr): nothing here is for clients,
// and the public listener serves none of it. Every admin route is built
// here, in NewAdmin, from the tracker's configuration.
type Admin struct {
	srv      *http.Server
	tracker  *tracker.Tracker
	draining atomic.Bool
}

// NewAdmin returns the admin listener of tkr, whose statistics are st.
func NewAdmin(tkr *tracker.Tracker, st *stats.Stats) *Admin {
	cfg := tkr.Config() // keys that need a restart: read once
	a := &Admin{tracker: tkr}
	r := httprouter.New()
	r.GET("/check", a.check)
	r.HEAD("/check", a.check)
	r.GET("/stats", serveStats(st))
	var storeMetrics []prometheus.Collector
	if c, ok := tkr.Pool().(prometheus.Collector); ok {
		storeMetrics = append(storeMetrics, c) // a store on a server: its round trips and errors
	}
	r.Handler(http.MethodGet, "/metrics", newMetricsHandler(st, tkr.Backend(), storeMetrics...))
	mountTorrents(r, tkr)
	writeTimeout := cfg.WriteTimeout.Duration
	if cfg.DebugPprof {
		mountPprof(r)
		writeTimeout = max(writeTimeout, pprofWriteTimeout)
	}
	a.srv = &http.Server{
		Handler:           siteAPI(cfg, tkr.Backend(), siteUpdates(cfg, tkr.Backend(), requireToken(tkr, r))),
		ReadHeaderTimeout: cfg.ReadTimeout.Duration,
		ReadTimeout:       cfg.ReadTimeout.Duration,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       cfg.IdleTimeout.Duration,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          newErrorLog(),
	}
	return a
}

// Handler returns the admin routes, for tests and for callers that serve
// them themselves.
func (a *Admin) Handler() http.Handler { return a.srv.Handler }

// Serve answers admin requests on l until Shutdown. It returns nil after
// Shutdown.
func (a *Admin) Serve(l net.Listener) error {
	if err := a.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Drain makes /check fail from now on, so that a load balancer stops
// sending clients while the public listeners drain: the daemon calls it
// as the first step of a shutdown.
func (a *Admin) Drain() { a.draining.Store(true) }

// Shutdown closes the admin listener, waiting until ctx ends for requests
// in flight.
func (a *Admin) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }

// check answers /check: 503 while the daemon drains, or while its store
// (a server, such as Redis) does not answer, so that a load balancer sends
// clients to another instance; STILL-ALIVE otherwise.
func (a *Admin) check(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header()["Content-Type"] = textPlain
	if a.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("SHUTTING-DOWN"))
		return
	}
	if err := a.tracker.Check(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("STORE-DOWN: " + err.Error()))
		return
	}
	w.Write([]byte("STILL-ALIVE"))
}

// mountPprof serves net/http/pprof's handlers under /debug/pprof/.
func mountPprof(r *httprouter.Router) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // the index and every named profile (heap, goroutine, ...)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	r.Handler(http.MethodGet, "/debug/pprof/*item", mux)
	r.Handler(http.MethodPost, "/debug/pprof/symbol", mux)
}

// statsJSON is /stats in the shape Chihaya's users know from 2014, plus
// Uptime, ResponseTime.P99, Torrents.Size, Runtime.GoRoutines and the
// requests of each transport (Requests.HTTP, Requests.UDP).
type statsJSON struct {
	Started             time.Time      `json:"Started"`
	Uptime              int64          `json:"Uptime"` // seconds
	ConnectionsOpen     int64          `json:"Connections.Open"`
	ConnectionsAccepted int64          `json:"Connections.Accepted"`
	RequestsHandled     int64          `json:"Requests.Handled"`
	RequestsErrored     int64          `json:"Requests.Errored"`
	RequestsBad         int64          `json:"Requests.Bad"`
	ResponseTime        responseTime   `json:"ResponseTime"`
	Announces           int64          `json:"Tracker.Announces"`
	Scrapes             int64          `json:"Tracker.Scrapes"`
	TorrentsSize        int64          `json:"Torrents.Size"`
	TorrentsAdded       int64          `json:"Torrents.Added"`
	TorrentsRemoved     int64          `json:"Torrents.Removed"`
	TorrentsReaped      int64          `json:"Torrents.Reaped"`
	IPv4                family         `json:"Peers.IPv4"`
	IPv6                family         `json:"Peers.IPv6"`
	HTTP                transport      `json:"Requests.HTTP"`
	UDP                 udpTransport   `json:"Requests.UDP"`
	Memory              stats.MemStats `json:"Memory"`
	Goroutines          int            `json:"Runtime.GoRoutines"`
}

// responseTime is in milliseconds, to the microsecond.
type responseTime struct {
	P50, P90, P95, P99 float64
}

// transport is the requests of one transport; Requests.Handled and the
// other top-level figures are their sums.
type transport struct {
	Handled   int64 `json:"Handled"`
	Errored   int64 `json:"Errored"`
	Bad       int64 `json:"Bad"`
	Announces int64 `json:"Announces"`
	Scrapes   int64 `json:"Scrapes"`
}

// udpTransport adds the UDP frontend's own figures.
type udpTransport struct {
	transport
	Connects         int64 `json:"Connects"`
	BadConnectionIDs int64 `json:"BadConnectionIDs"`
	ErrorPackets     int64 `json:"ErrorPackets"`
	Dropped          int64 `json:"Dropped"`
}

func newTransport(tc *stats.TransportCounts) transport {
	var t transport
	for k := range stats.NumKinds {
		for o := range stats.NumOutcomes {
			t.Handled += tc.Requests[k][o] // every outcome, as Requests.Handled
		}
		t.Bad += tc.Requests[k][stats.ClientError]
		t.Errored += tc.Requests[k][stats.ServerError]
	}
	t.Announces, t.Scrapes = tc.Requests[stats.Announce][stats.OK], tc.Requests[stats.Scrape][stats.OK]
	return t
}

func newUDPTransport(snap *stats.Snapshot) udpTransport {
	u := snap.UDP
	return udpTransport{newTransport(&snap.Transports[stats.UDP]), u.Connects, u.BadConnectionIDs, u.Errors, u.Dropped}
}

type family struct {
	Peers     stats.PeerCounts `json:"Peers"`
	Seeds     stats.PeerCounts `json:"Seeds"`
	Completed int64            `json:"Completed"`
}

func newStatsJSON(snap *stats.Snapshot, now time.Time) *statsJSON {
	fam := func(f stats.FamilyCounts) family {
		return family{Peers: f.Leechers, Seeds: f.Seeders, Completed: f.Completed}
	}
	ms := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	rt := snap.ResponseTime
	return &statsJSON{
		Started:             snap.Started,
		Uptime:              int64(now.Sub(snap.Started) / time.Second),
		ConnectionsOpen:     snap.ConnectionsOpen,
		ConnectionsAccepted: snap.ConnectionsAccepted,
		RequestsHandled:     snap.RequestsHandled,
		RequestsErrored:     snap.RequestsErrored,
		RequestsBad:         snap.RequestsBad,
		ResponseTime:        responseTime{ms(rt.P50), ms(rt.P90), ms(rt.P95), ms(rt.P99)},
		Announces:           snap.Announces,
		Scrapes:             snap.Scrapes,
		TorrentsSize:        snap.Torrents,
		TorrentsAdded:       snap.TorrentsAdded,
		TorrentsRemoved:     snap.TorrentsRemoved,
		TorrentsReaped:      snap.TorrentsReaped,
		IPv4:                fam(snap.Peers[0]),
		IPv6:                fam(snap.Peers[1]),
		HTTP:                newTransport(&snap.Transports[stats.HTTP]),
		UDP:                 newUDPTransport(snap),
		Memory:              snap.Memory,
		Goroutines:          snap.Goroutines,
	}
}

// serveStats answers /stats: the counters as JSON, nested as in 2014;
// ?flatten gives one level of dotted keys ("Peers.IPv4.Seeds.Current"),
// ?pretty indents.
func serveStats(st *stats.Stats) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		writeStats(w, r, st.Snapshot())
	}
}

func writeStats(w http.ResponseWriter, r *http.Request, snap stats.Snapshot) {
	var out any = newStatsJSON(&snap, time.Now())
	q := r.URL.Query()
	if flag(q, "flatten") {
		flat, err := flattenJSON(out)
		if err != nil {
			glog.Errorf("/stats: %v", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		out = flat
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if flag(q, "pretty") {
		enc.SetIndent("", "  ")
	}
	enc.Encode(out)
}

// flag reports whether a query switch is on: given, with no value or with
// any value but "0", "false" or "no".
func flag(q url.Values, name string) bool {
	v, ok := q[name]
	if !ok {
		return false
	}
	switch v[0] {
	case "0", "false", "no":
		return false
	}
	return true
}

// flattenJSON returns v's JSON form with nested objects folded into the top
// level: {"a": {"b": 1}} becomes {"a.b": 1}. Numbers keep their exact
// text; an empty object stays an empty object under its own key.
func flattenJSON(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	out := make(map[string]any)
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && (len(m) > 0 || prefix == "") {
			for k, x := range m {
				if prefix != "" {
					k = prefix + "." + k
				}
				walk(k, x)
			}
			return
		}
		out[prefix] = v
	}
	walk("", tree)
	return out, nil
}

// newErrorLog sends net/http's own complaints (bad requests on the wire,
// accept errors) to glog at verbosity 1: on a public tracker they are
// frequent and rarely the operator's business.
func newErrorLog() *log.Logger { return log.New(glogWriter{}, "", 0) }

type glogWriter struct{}

func (glogWriter) Write(p []byte) (int, error) {
	if glog.V(1) {
		glog.InfoDepth(3, string(p))
	}
	return len(p), nil
}
