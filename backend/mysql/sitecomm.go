package mysql

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/glog"
)

// maxTokenList is where Ocelot splits a token expiry request's list.
const maxTokenList = 350

// siteComm tells the site which freeleech tokens were spent, as Ocelot's
// site_comm does:
//
//	GET <site_url>/tools.php?key=<secret>&type=expiretoken&action=ocelot&tokens=uid:tid,uid:tid
//
// A request succeeds on HTTP 200; until then its tokens stay queued and
// are retried at the next tick.
type siteComm struct {
	base, secret string
	client       *http.Client
	limit        int
	dropped      *atomic.Uint64

	mu      sync.Mutex
	pending []string // "uid:tid"
	sendMu  sync.Mutex
}

func newSiteComm(base, secret string, limit int, dropped *atomic.Uint64) *siteComm {
	return &siteComm{
		base:    base,
		secret:  secret,
		client:  &http.Client{Timeout: 10 * time.Second},
		limit:   limit,
		dropped: dropped,
	}
}

// expire queues a spent token.
func (s *siteComm) expire(uid, tid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= s.limit {
		s.dropped.Add(1)
		return
	}
	s.pending = append(s.pending, strconv.FormatUint(uint64(uid), 10)+":"+strconv.FormatUint(uint64(tid), 10))
}

func (s *siteComm) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// run sends what is queued every interval until stop closes.
func (s *siteComm) run(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := s.send(ctx); err != nil {
				glog.Errorf("mysql backend: token expiry: %v (%d tokens stay queued)", err, s.queued())
			}
			cancel()
		}
	}
}

// drain sends what is left, for at most d.
func (s *siteComm) drain(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := s.send(ctx)
	if n := s.queued(); err != nil && n > 0 {
		return fmt.Errorf("%d tokens not reported: %w", n, err)
	}
	return err
}

// send posts the queued tokens in lists of at most maxTokenList
// characters. The first failure stops it; unsent tokens stay queued.
func (s *siteComm) send(ctx context.Context) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	for {
		s.mu.Lock()
		n, size := 0, 0
		for n < len(s.pending) && (n == 0 || size+1+len(s.pending[n]) <= maxTokenList) {
			if n > 0 {
				size++
			}
			size += len(s.pending[n])
			n++
		}
		list := strings.Join(s.pending[:n], ",")
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		if err := s.post(ctx, list); err != nil {
			return err
		}
		s.mu.Lock()
		s.pending = s.pending[n:]
		s.mu.Unlock()
	}
}

func (s *siteComm) post(ctx context.Context, list string) error {
	// Values are not escaped, as Ocelot's are not: the secret is
	// alphanumeric and the list is digits, ':' and ','.
	u := s.base + "/tools.php?key=" + s.secret + "&type=expiretoken&action=ocelot&tokens=" + list
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// Never log the URL: it carries the secret.
		if ue, ok := err.(*url.Error); ok {
			err = fmt.Errorf("%s %s/tools.php: %w", ue.Op, s.base, ue.Err)
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("site answered %s", resp.Status)
	}
	return nil
}
