package tracker_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/tracker"
)

// TestTorrentListScrape: a scrape of refused torrents only is refused; in
// a mixed scrape the refused ones get zero counts, whatever the store
// holds, in the order asked.
func TestTorrentListScrape(t *testing.T) {
	cfg := config.Default()
	tkr := newTracker(t, cfg) // no list yet: torrent 1 gets a swarm
	announce(t, tkr, 1, 5)
	other := bittorrent.InfoHash{2}
	mustAnnounce(t, tkr, &tracker.Announce{InfoHash: other, PeerID: bittorrent.PeerID{9}, Addr: netip.AddrFrom4([4]byte{10, 0, 0, 9}), Port: 6881, NumWant: -1})

	path := filepath.Join(t.TempDir(), "list")
	os.WriteFile(path, []byte(other.String()+"\n"), 0o644)
	next := *cfg
	next.TorrentList = &config.TorrentList{Mode: config.ListDeny, File: path}
	tkr.Reload(&next)
	if err := tkr.ReloadLists(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tkr.Scrape(ctx, "", []bittorrent.InfoHash{other}, nil); !errors.Is(err, tracker.ErrTorrentNotAuthorized) {
		t.Errorf("scrape of a refused torrent: %v", err)
	}
	out, err := tkr.Scrape(ctx, "", []bittorrent.InfoHash{other, {1}}, nil)
	if err != nil || len(out) != 2 || out[0].InfoHash != other || out[0].Counts != (tracker.Counts{}) || out[1].Incomplete != 1 {
		t.Errorf("mixed scrape: %+v, %v", out, err)
	}
	all, err := tkr.ScrapeAll(ctx, nil)
	if err != nil || len(all) != 1 || all[0].InfoHash != (bittorrent.InfoHash{1}) {
		t.Errorf("ScrapeAll after the deny list dropped torrent 2: %+v, %v", all, err)
	}
	var resp tracker.AnnounceResponse
	if err := tkr.Announce(ctx, &tracker.Announce{InfoHash: other, PeerID: bittorrent.PeerID{9}, Addr: netip.AddrFrom4([4]byte{10, 0, 0, 9}), Port: 6881, NumWant: -1}, &resp); !errors.Is(err, tracker.ErrTorrentNotAuthorized) {
		t.Errorf("announce of a refused torrent: %v", err)
	}

	// Listing torrent 1 by the API drops its swarm at once.
	if changed, err := tkr.SetListed(ctx, bittorrent.InfoHash{1}, true); err != nil || !changed {
		t.Fatalf("SetListed: %v, %v", changed, err)
	}
	st, err := tkr.Torrent(ctx, bittorrent.InfoHash{1})
	if err != nil || st.Incomplete != 0 || st.Listed == nil || !*st.Listed || *st.Allowed {
		t.Errorf("torrent 1 once denied: %+v, %v", st, err)
	}

	// No list: the API says so.
	tkr.Reload(cfg)
	if err := tkr.ReloadLists(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tkr.SetListed(ctx, other, true); !errors.Is(err, tracker.ErrNoTorrentList) {
		t.Errorf("SetListed without a list: %v", err)
	}
	if st, _ := tkr.Torrent(ctx, other); st.Listed != nil || st.Allowed != nil {
		t.Errorf("Torrent without a list: %+v", st)
	}
}
