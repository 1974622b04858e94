package http

import (
	"encoding/json"
	"log"
	"net/http"
	"runtime"
	"time"

	"github.com/chihaya/chihaya/stats"
	"github.com/golang/glog"
	"github.com/julienschmidt/httprouter"
)

// NewAdmin returns the operators' server: /check for health checks and
// /stats for the counters. It belongs on a private address (admin_addr):
// nothing here is for clients.
func NewAdmin(s *Server) *http.Server {
	r := httprouter.New()
	r.GET("/check", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		w.Header()["Content-Type"] = textPlain
		w.Write([]byte("STILL-ALIVE"))
	})
	r.GET("/stats", s.serveStats)
	return &http.Server{
		Handler:           r,
		ReadHeaderTimeout: s.cfg.ReadTimeout.Duration,
		ReadTimeout:       s.cfg.ReadTimeout.Duration,
		WriteTimeout:      s.cfg.WriteTimeout.Duration,
		IdleTimeout:       s.cfg.IdleTimeout.Duration,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          newErrorLog(),
	}
}

// statsJSON is /stats in the shape Chihaya's users know from 2014.
type statsJSON struct {
	Started             time.Time `json:"Started"`
	Uptime              string    `json:"Uptime"`
	ConnectionsOpen     int64     `json:"Connections.Open"`
	ConnectionsAccepted int64     `json:"Connections.Accepted"`
	RequestsHandled     int64     `json:"Requests.Handled"`
	RequestsErrored     int64     `json:"Requests.Errored"`
	RequestsBad         int64     `json:"Requests.Bad"`
	Announces           int64     `json:"Tracker.Announces"`
	Scrapes             int64     `json:"Tracker.Scrapes"`
	TorrentsAdded       int64     `json:"Torrents.Added"`
	TorrentsRemoved     int64     `json:"Torrents.Removed"`
	TorrentsReaped      int64     `json:"Torrents.Reaped"`
	IPv4                family    `json:"Peers.IPv4"`
	IPv6                family    `json:"Peers.IPv6"`
	Goroutines          int       `json:"Runtime.GoRoutines"`
	EventsDropped       uint64    `json:"Stats.Dropped"`
}

type family struct {
	Peers     stats.PeerCounts `json:"Peers"`
	Seeds     stats.PeerCounts `json:"Seeds"`
	Completed int64            `json:"Completed"`
}

func (s *Server) serveStats(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	snap := s.stats.Snapshot()
	fam := func(f stats.FamilyCounts) family {
		return family{Peers: f.Leechers, Seeds: f.Seeders, Completed: f.Completed}
	}
	out := statsJSON{
		Started:             snap.Started,
		Uptime:              time.Since(snap.Started).Round(time.Second).String(),
		ConnectionsOpen:     snap.ConnectionsOpen,
		ConnectionsAccepted: snap.ConnectionsAccepted,
		RequestsHandled:     snap.RequestsHandled,
		RequestsErrored:     snap.RequestsErrored,
		RequestsBad:         snap.RequestsBad,
		Announces:           snap.Announces,
		Scrapes:             snap.Scrapes,
		TorrentsAdded:       snap.TorrentsAdded,
		TorrentsRemoved:     snap.TorrentsRemoved,
		TorrentsReaped:      snap.TorrentsReaped,
		IPv4:                fam(snap.Peers[0]),
		IPv6:                fam(snap.Peers[1]),
		Goroutines:          runtime.NumGoroutine(),
		EventsDropped:       snap.Dropped,
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if _, pretty := r.URL.Query()["pretty"]; pretty {
		enc.SetIndent("", "  ")
	}
	enc.Encode(out)
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
