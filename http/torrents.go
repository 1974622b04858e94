package http

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
	"github.com/golang/glog"
	"github.com/julienschmidt/httprouter"
)

// mountTorrents serves the admin API of single torrents:
//
//	GET    /torrents/<hex>         the swarm's counts, and its place in torrent_list
//	PUT    /torrents/<hex>/listed  adds the torrent to torrent_list's file
//	DELETE /torrents/<hex>/listed  takes it out
//
// <hex> is the info_hash in 40 hex digits. A change to the list is written
// to its file at once (atomically), so it survives a restart; a torrent
// the list refuses from then on has its swarm dropped.
func mountTorrents(r *httprouter.Router, tkr *tracker.Tracker) {
	r.GET("/torrents/:hash", func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		h, ok := adminHash(w, ps)
		if !ok {
			return
		}
		st, err := tkr.Torrent(r.Context(), h)
		if err != nil {
			adminError(w, r, err)
			return
		}
		writeJSON(w, torrentJSON{InfoHash: h.String(), Complete: st.Complete, Incomplete: st.Incomplete, Downloaded: st.Downloaded, Listed: st.Listed, Allowed: st.Allowed})
	})
	listed := func(on bool) httprouter.Handle {
		return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
			h, ok := adminHash(w, ps)
			if !ok {
				return
			}
			changed, err := tkr.SetListed(r.Context(), h, on)
			if err != nil {
				adminError(w, r, err)
				return
			}
			glog.Infof("admin: %s %s: listed %v (changed: %v)", r.Method, r.URL.Path, on, changed)
			writeJSON(w, listedJSON{InfoHash: h.String(), Listed: on, Changed: changed})
		}
	}
	r.PUT("/torrents/:hash/listed", listed(true))
	r.DELETE("/torrents/:hash/listed", listed(false))
}

// torrentJSON is GET /torrents/<hex>'s answer; listed and allowed are
// left out without a torrent_list.
type torrentJSON struct {
	InfoHash   string `json:"info_hash"`
	Complete   int    `json:"complete"`
	Incomplete int    `json:"incomplete"`
	Downloaded int    `json:"downloaded"`
	Listed     *bool  `json:"listed,omitempty"`
	Allowed    *bool  `json:"allowed,omitempty"`
}

// listedJSON is the answer of PUT and DELETE /torrents/<hex>/listed.
type listedJSON struct {
	InfoHash string `json:"info_hash"`
	Listed   bool   `json:"listed"`
	Changed  bool   `json:"changed"` // false: the list said so already
}

// adminHash reads the route's info_hash, answering 400 if it is not one.
func adminHash(w http.ResponseWriter, ps httprouter.Params) (bittorrent.InfoHash, bool) {
	h, err := bittorrent.ParseInfoHash(ps.ByName("hash"))
	if err != nil {
		http.Error(w, "400 Bad Request: "+ps.ByName("hash")+": "+err.Error(), http.StatusBadRequest)
		return h, false
	}
	return h, true
}

// adminError answers a failed admin request: 409 when no list is
// configured, 500 otherwise, with the error's text for the operator.
func adminError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, tracker.ErrNoTorrentList) {
		http.Error(w, "409 Conflict: "+err.Error(), http.StatusConflict)
		return
	}
	glog.Errorf("admin: %s %s: %v", r.Method, r.URL.Path, err)
	http.Error(w, "500 Internal Server Error: "+err.Error(), http.StatusInternalServerError)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
