package tracker

import (
	"context"
	"errors"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/tracker/accesslist"
	"github.com/golang/glog"
)

// Failures of the lists of a public tracker (torrent_list, client_list),
// worded as opentracker and Ocelot word them: clients and operators know
// these strings.
var (
	ErrTorrentNotAuthorized = bittorrent.ClientError("Requested download is not authorized for use with this tracker.")
	ErrClientBanned         = bittorrent.ClientError("Your client is banned")
)

// Errors of the operations on lists and on every swarm.
var (
	ErrNoTorrentList = errors.New("no torrent_list is configured")
	ErrNoFullScrape  = bittorrent.ClientError("full scrape is not available: the store cannot list its swarms")
)

// admit checks a public announce against the lists, before the store is
// touched.
func (t *Tracker) admit(cfg *config.Config, a *Announce) error {
	if l := t.torrents.Load(); l != nil && !l.Allowed(a.InfoHash) {
		return ErrTorrentNotAuthorized
	}
	if ok, banned := accesslist.ClientAllowed(cfg.ClientList, &a.PeerID); !ok {
		if banned {
			return ErrClientBanned
		}
		return ErrClientNotApproved
	}
	return nil
}

// scrapeListed is a public scrape under a torrent list: the refused
// torrents get zero counts, without a look in the store, and a scrape of
// refused torrents only is refused.
func (t *Tracker) scrapeListed(ctx context.Context, l *accesslist.Torrents, hashes []bittorrent.InfoHash, out []Scrape) ([]Scrape, error) {
	first := len(out)
	refused := 0
	for _, h := range hashes {
		if !l.Allowed(h) {
			refused++
		}
	}
	if refused == len(hashes) {
		return out, ErrTorrentNotAuthorized
	}
	conn, err := t.pool.Get()
	if err != nil {
		return out, err
	}
	defer conn.Close()
	out, err = conn.Scrape(ctx, hashes, out)
	for i := first; i < len(out); i++ {
		if !l.Allowed(out[i].InfoHash) {
			out[i].Counts = Counts{}
		}
	}
	return out, err
}

// LoadLists reads the torrent list the configuration names, if any, and
// drops the swarms it refuses (a store loaded from a state file may hold
// some). A list that does not load is an error: at start, it stops the
// daemon.
func (t *Tracker) LoadLists(ctx context.Context) error {
	cfg := t.cfg.Load().TorrentList
	if cfg == nil {
		t.torrents.Store(nil)
		return nil
	}
	l, err := accesslist.Open(*cfg)
	if err != nil {
		return err
	}
	t.torrents.Store(l)
	glog.Infof("torrent_list: %d torrents in %s (%s list)", l.Len(), cfg.File, cfg.Mode)
	return t.dropRefused(ctx)
}

// ReloadLists applies the running configuration's torrent list (after a
// reload: it may name another file or mode, or none) and re-reads its
// file. The swarms of torrents it now refuses are dropped; the others are
// untouched. A file that does not load leaves the list as it was.
// client_list needs nothing here: it is read from the configuration per
// announce.
func (t *Tracker) ReloadLists(ctx context.Context) error {
	cfg := t.cfg.Load().TorrentList
	l := t.torrents.Load()
	if cfg == nil || l == nil || !l.Is(*cfg) {
		if l != nil && cfg == nil {
			glog.Info("torrent_list: none configured any more: every torrent is served")
		}
		return t.LoadLists(ctx)
	}
	changed, err := l.Reload()
	if err != nil {
		return err
	}
	if !changed {
		return nil
	}
	glog.Infof("torrent_list: reloaded %s: %d torrents", l.File(), l.Len())
	return t.dropRefused(ctx)
}

// RunLists re-reads the torrent list's file whenever its modification
// time or size changes, looking every interval, until ctx ends. Errors
// are logged, and the list read last stays.
func (t *Tracker) RunLists(ctx context.Context, every time.Duration) {
	Every(ctx, every, func() {
		if l := t.torrents.Load(); l != nil && l.Changed() {
			if err := t.ReloadLists(ctx); err != nil {
				glog.Errorf("%v; the list read last stays", err)
			}
		}
	})
}

// Every calls f every interval until ctx ends: the loop of the periodic
// work of the tracker and its stores (list reloads, state snapshots).
func Every(ctx context.Context, every time.Duration, f func()) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}

// dropRefused removes the swarms of the torrents the list refuses.
func (t *Tracker) dropRefused(ctx context.Context) error {
	l := t.torrents.Load()
	if l == nil {
		return nil
	}
	lister, ok := t.pool.(Lister)
	if !ok {
		return nil // nothing to walk: refused swarms empty as their peers expire
	}
	all, err := lister.ScrapeAll(ctx, nil)
	if err != nil {
		return err
	}
	var refused []bittorrent.InfoHash
	for i := range all {
		if !l.Allowed(all[i].InfoHash) {
			refused = append(refused, all[i].InfoHash)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	p, err := lister.Drop(ctx, refused)
	t.recordPurged(p)
	glog.Infof("torrent_list: dropped the swarms of %d refused torrents (%d peers)", p.Swarms, p.Peers[0]+p.Peers[1])
	return err
}

// SetListed adds h to the torrent list (listed) or takes it out, and
// rewrites the list's file; see accesslist.Torrents.SetListed. If the
// torrent is refused from now on, its swarm is dropped.
func (t *Tracker) SetListed(ctx context.Context, h bittorrent.InfoHash, listed bool) (changed bool, err error) {
	l := t.torrents.Load()
	if l == nil {
		return false, ErrNoTorrentList
	}
	if changed, err = l.SetListed(h, listed); err != nil || l.Allowed(h) {
		return changed, err
	}
	if lister, ok := t.pool.(Lister); ok {
		p, err := lister.Drop(ctx, []bittorrent.InfoHash{h})
		t.recordPurged(p)
		return changed, err
	}
	return changed, nil
}

// TorrentState is what the tracker knows of one torrent.
type TorrentState struct {
	Counts
	// Listed is whether the torrent list holds the torrent, and Allowed
	// whether the tracker serves it; both are absent without a list.
	Listed, Allowed *bool
}

// Torrent returns what the tracker knows of the torrent h, for operators.
func (t *Tracker) Torrent(ctx context.Context, h bittorrent.InfoHash) (TorrentState, error) {
	var st TorrentState
	conn, err := t.pool.Get()
	if err != nil {
		return st, err
	}
	defer conn.Close()
	sc, err := conn.Scrape(ctx, []bittorrent.InfoHash{h}, nil)
	if err != nil {
		return st, err
	}
	st.Counts = sc[0].Counts
	if l := t.torrents.Load(); l != nil {
		listed, allowed := l.Listed(h), l.Allowed(h)
		st.Listed, st.Allowed = &listed, &allowed
	}
	return st, nil
}

// ScrapeAll appends the figures of every swarm to out, in no order, for
// a full scrape. The store must implement Lister.
func (t *Tracker) ScrapeAll(ctx context.Context, out []Scrape) ([]Scrape, error) {
	lister, ok := t.pool.(Lister)
	if !ok {
		return out, ErrNoFullScrape
	}
	return lister.ScrapeAll(ctx, out)
}
