// Package http is the tracker's HTTP frontend: it routes announces and
// scrapes (on github.com/julienschmidt/httprouter), turns queries into
// tracker requests and writes the answers as canonical bencode. Every answer
// to a client is HTTP 200 with Content-Type text/plain, failures included
// ("failure reason"), because clients such as Transmission discard the body
// of any other status; the one exception is a request too long to serve,
// answered 414 Request-URI Too Long (see headlimit.go), the status that
// makes Transmission split its multi-scrape.
//
// The admin listener, for operators only, is in admin.go.
package http

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	"github.com/golang/glog"
	"github.com/julienschmidt/httprouter"
)

// Server serves the public announce and scrape routes.
//
// Its one source of configuration is the tracker's: keys that need a
// restart are read once, by NewServer; reloadable ones once per request,
// so that a reload never mixes two configurations in one answer.
type Server struct {
	private        bool // routes with passkeys
	maxHeaderBytes int  // the longest request line served
	maxConns       int
	tracker        *tracker.Tracker
	stats          *stats.Stats
	srv            *http.Server
	drain          drain       // Shutdown answers every request that began to arrive
	full           fullScrapes // the full scrape's answer, built off the request path
}

// NewServer returns a server for tkr; Serve starts it.
func NewServer(tkr *tracker.Tracker, st *stats.Stats) *Server {
	cfg := tkr.Config()
	s := &Server{private: cfg.Private, maxHeaderBytes: cfg.MaxHeaderBytes, maxConns: cfg.MaxConnections, tracker: tkr, stats: st}
	s.srv = &http.Server{
		Handler: s.Handler(),
		// A client's request is one line and a few headers: anything slow or
		// large is an attack or garbage, and costs a goroutine while it lasts.
		ReadHeaderTimeout: cfg.ReadTimeout.Duration,
		ReadTimeout:       cfg.ReadTimeout.Duration,
		WriteTimeout:      cfg.WriteTimeout.Duration,
		IdleTimeout:       cfg.IdleTimeout.Duration,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnState: func(c net.Conn, state http.ConnState) {
			s.drain.track(c, state)
			switch state {
			case http.StateNew:
				st.RecordConn(true)
			case http.StateClosed, http.StateHijacked:
				st.RecordConn(false)
			}
		},
		ErrorLog: newErrorLog(),
	}
	return s
}

// Handler returns the client routes: /announce and /scrape for a public
// tracker, /<passkey>/announce and /<passkey>/scrape for a private one
// (Gazelle's URLs), never both. A request line longer than
// http_max_header_bytes is answered 414.
func (s *Server) Handler() http.Handler {
	if h, ok := s.siteAnnounces(); ok { // UNIT3D's /announce/<passkey> (unit3d.go)
		return uriLimit(s.maxHeaderBytes, h)
	}
	r := httprouter.New()
	if s.private {
		r.GET("/:passkey/announce", s.announce)
		r.GET("/:passkey/scrape", s.scrape)
	} else {
		r.GET("/announce", s.announce)
		r.GET("/scrape", s.scrape)
	}
	return uriLimit(s.maxHeaderBytes, r)
}

// passkey returns the route's passkey.
func passkey(ps httprouter.Params) (string, error) {
	if len(ps) == 0 {
		return "", nil
	}
	if pk := ps[0].Value; len(pk) == bittorrent.PasskeyLen {
		return pk, nil
	}
	return "", tracker.ErrMalformedAnnounce
}

// Serve answers requests on l until Shutdown. It returns nil after a
// graceful shutdown.
func (s *Server) Serve(l net.Listener) error {
	if err := s.srv.Serve(s.drain.listen(l, s.maxConns)); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting connections and waits, until ctx ends, for the
// requests in flight, including those still arriving (see drain). Idle
// keep-alive connections are closed.
func (s *Server) Shutdown(ctx context.Context) error { return s.drain.shutdown(ctx, s.srv) }

// exchange is the per-request scratch space, pooled so that a steady-state
// announce allocates nothing.
type exchange struct {
	ann    tracker.Announce
	opt    announceOptions
	resp   tracker.AnnounceResponse
	hashes []bittorrent.InfoHash
	files  []tracker.Scrape
	buf    []byte
}

var exchanges = sync.Pool{New: func() any { return &exchange{buf: make([]byte, 0, 1024)} }}

// textPlain is shared by every response: a header value net/http only reads.
var textPlain = []string{"text/plain"}

func (s *Server) announce(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	start := time.Now()
	x := exchanges.Get().(*exchange)
	defer exchanges.Put(x)

	cfg := s.tracker.Config()
	from := realIP(r, cfg)
	if ok, retry := s.tracker.Allow(from, start); !ok {
		s.refuse(w, r, x, stats.Announce, retry, start)
		return
	}
	err := parseAnnounce(r.URL.RawQuery, &x.ann, &x.opt, cfg.AllowIPSpoofing)
	if err == nil {
		x.ann.Passkey, err = passkey(ps)
	}
	if err == nil {
		x.ann.UserAgent = r.Header.Get("User-Agent")
		x.ann.Time = start
		x.ann.PeerIDs = !x.opt.compact && !x.opt.noPeerID
		x.ann.Addr = x.opt.ip
		if !x.ann.Addr.IsValid() {
			x.ann.Addr = from
		}
		err = s.tracker.Announce(r.Context(), &x.ann, &x.resp)
	}
	if err == nil {
		x.buf = appendAnnounce(x.buf[:0], &x.resp, &x.opt, x.ann.Addr)
	}
	s.reply(w, r, x, stats.Announce, err, start)
}

func (s *Server) scrape(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	start := time.Now()
	x := exchanges.Get().(*exchange)
	defer exchanges.Put(x)

	cfg := s.tracker.Config()
	if ok, retry := s.tracker.Allow(realIP(r, cfg), start); !ok {
		s.refuse(w, r, x, stats.Scrape, retry, start)
		return
	}
	pk, err := passkey(ps)
	if err == nil {
		x.hashes, err = parseScrape(r.URL.RawQuery, x.hashes[:0], cfg.MaxScrapeInfoHashes)
	}
	if err == nil && len(x.hashes) == 0 && cfg.FullScrape && !s.private {
		s.fullScrape(w, r, cfg, start) // BEP 48 (fullscrape.go)
		return
	}
	if err == nil {
		x.files, err = s.tracker.Scrape(r.Context(), pk, x.hashes, x.files[:0])
	}
	if err == nil {
		x.buf = appendScrape(x.buf[:0], x.files, cfg.MinAnnounce.Duration)
	}
	s.reply(w, r, x, stats.Scrape, err, start)
}

// refuse answers a request over the rate limit: a failure with BEP 31's
// "retry in", in whole minutes and at least one.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, x *exchange, kind stats.Kind, retry time.Duration, start time.Time) {
	x.buf = appendRetry(x.buf[:0], tracker.ErrRateLimited.Error(), retry)
	w.Header()["Content-Type"] = textPlain
	w.Write(x.buf)
	s.stats.RecordRequest(kind, stats.Limited, time.Since(start))
	if glog.V(3) {
		glog.Infof("%s %s?%s from %s: rate limited for %v", r.Method, r.URL.Path, r.URL.RawQuery, r.RemoteAddr, retry)
	}
}

// reply writes x.buf, or a failure for err, and records the request.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, x *exchange, kind stats.Kind, err error, start time.Time) {
	outcome := stats.OK
	if err != nil {
		var ce bittorrent.ClientError
		if errors.As(err, &ce) {
			outcome = stats.ClientError
			x.buf = appendFailure(x.buf[:0], ce.Error())
			if errors.Is(err, tracker.ErrTooManyInfoHashes) {
				// Clients shrink their multi-scrape on this status only.
				x.buf = appendFailure(x.buf[:0], uriTooLong+": "+ce.Error())
				w.Header()["Content-Type"] = textPlain
				w.WriteHeader(http.StatusRequestURITooLong)
			}
		} else {
			outcome = stats.ServerError
			glog.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
			x.buf = appendFailure(x.buf[:0], "internal tracker error")
		}
	}
	w.Header()["Content-Type"] = textPlain
	w.Write(x.buf)
	s.stats.RecordRequest(kind, outcome, time.Since(start))
	if glog.V(3) {
		glog.Infof("%s %s?%s from %s: %v", r.Method, r.URL.Path, r.URL.RawQuery, r.RemoteAddr, err)
	}
}

// remoteAddr is the peer's address as the socket shows it, with an
// IPv4-mapped IPv6 address (a dual-stack listener's view of an IPv4 client)
// turned back into IPv4. An unparsable address gives the zero Addr, which
// the tracker refuses.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}
