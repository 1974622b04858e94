package http

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/golang/glog"
)

var success = []byte("success")

// siteUpdates wraps the admin handler next with the site's side of Ocelot's
// protocol, for a private tracker whose backend is a backend.Updater:
//
//	GET /<tracker_secret>/update?action=...   answered "success"
//	GET /<report_secret>/report?get=...       answered with the report
//
// A first segment of a secret's length with any other secret gets Ocelot's
// "Authentication failure". Everything else goes to next. These routes live
// on the admin listener only: Gazelle's TRACKER_HOST/TRACKER_PORT point there.
//
// The secrets need a restart to change: cfg is the configuration at start.
func siteUpdates(cfg *config.Config, be backend.Conn, next http.Handler) http.Handler {
	up, ok := be.(backend.Updater)
	if !cfg.Private || !ok {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, verb, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if !ok || len(secret) != bittorrent.PasskeyLen || (verb != "update" && verb != "report") {
			next.ServeHTTP(w, r)
			return
		}
		w.Header()["Content-Type"] = textPlain
		want := cfg.TrackerSecret
		if verb == "report" {
			want = cfg.ReportSecret
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
			w.Write(appendFailure(nil, "Authentication failure"))
			return
		}
		if verb == "report" {
			body, err := up.Report(r.URL.Query())
			if err != nil {
				w.Write(appendFailure(nil, err.Error()))
				return
			}
			w.Write(body)
			return
		}
		action := r.URL.Query().Get("action")
		body, err := up.Update(action, r.URL.RawQuery)
		if err != nil {
			glog.Errorf("site update %q: %v", action, err)
			w.Write(appendFailure(nil, err.Error()))
			return
		}
		if body == nil {
			body = success
		}
		w.Write(body)
	})
}
