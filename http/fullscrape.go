package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/stats"
	"github.com/golang/glog"
)

// A full scrape (BEP 48: /scrape with no info_hash, with full_scrape on)
// answers every torrent. Walking a store of 100k torrents, sorting and
// encoding them costs tens of milliseconds, so requests never do it: they
// are served a copy, plain and gzipped, built at most every
// full_scrape_interval by one goroutine. Only the first request, with no
// copy yet, waits for a build; a request that finds the copy older than
// the interval starts the next build and is served the current copy.

// fullScrapes holds the current copy and builds the next.
type fullScrapes struct {
	cur      atomic.Pointer[fullScrapeCopy]
	building atomic.Bool
	first    sync.Mutex // the first requests wait on the first build
}

// fullScrapeCopy is one full scrape's answer.
type fullScrapeCopy struct {
	plain, gz []byte
	built     time.Time
	took      time.Duration
}

// generatedHeader carries a full scrape's build time (RFC 1123, as
// Last-Modified, which says the same to caches) and how long the build
// took, for operators.
const generatedHeader = "X-Full-Scrape-Generated"

func (s *Server) fullScrape(w http.ResponseWriter, r *http.Request, cfg *config.Config, start time.Time) {
	c, err := s.full.get(s, cfg)
	if err != nil {
		x := exchanges.Get().(*exchange)
		defer exchanges.Put(x)
		s.reply(w, r, x, stats.Scrape, err, start)
		return
	}
	h := w.Header()
	h["Content-Type"] = textPlain
	h.Set("Last-Modified", c.built.UTC().Format(http.TimeFormat))
	h.Set(generatedHeader, c.built.UTC().Format(http.TimeFormat)+"; took="+c.took.Round(time.Millisecond).String())
	h.Set("Vary", "Accept-Encoding")
	body := c.plain
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = c.gz
	}
	w.Write(body)
	s.stats.RecordRequest(stats.Scrape, stats.OK, time.Since(start))
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip: named
// (or *) without q=0.
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.TrimSpace(coding)
		if !strings.EqualFold(coding, "gzip") && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return !(q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000")
	}
	return false
}

// get returns the current copy, building the first one if there is none
// and starting the next build if it is older than full_scrape_interval.
func (f *fullScrapes) get(s *Server, cfg *config.Config) (*fullScrapeCopy, error) {
	c := f.cur.Load()
	if c == nil {
		f.first.Lock()
		defer f.first.Unlock()
		if c = f.cur.Load(); c == nil {
			var err error
			if c, err = buildFullScrape(s, cfg); err != nil {
				return nil, err
			}
			f.cur.Store(c)
		}
		return c, nil
	}
	if time.Since(c.built) >= cfg.FullScrapeInterval.Duration && f.building.CompareAndSwap(false, true) {
		go func() {
			defer f.building.Store(false)
			next, err := buildFullScrape(s, cfg)
			if err != nil {
				glog.Errorf("full scrape: %v; the previous copy stays", err)
				return
			}
			f.cur.Store(next)
		}()
	}
	return c, nil
}

// buildFullScrape walks the store and encodes every torrent's figures.
func buildFullScrape(s *Server, cfg *config.Config) (*fullScrapeCopy, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	files, err := s.tracker.ScrapeAll(ctx, nil)
	if err != nil {
		return nil, err
	}
	c := &fullScrapeCopy{built: start}
	c.plain = appendScrape(make([]byte, 0, 64+len(files)*80), files, cfg.MinAnnounce.Duration)
	var gz bytes.Buffer
	gz.Grow(len(c.plain) / 3)
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed) // the copy is rebuilt often: speed over the last few percent
	zw.Write(c.plain)
	zw.Close()
	c.gz = gz.Bytes()
	c.took = time.Since(start)
	if glog.V(1) {
		glog.Infof("full scrape: %d torrents, %d bytes (%d gzipped) in %v", len(files), len(c.plain), len(c.gz), c.took)
	}
	return c, nil
}
