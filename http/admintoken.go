package http

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/chihaya/chihaya/tracker"
)

// requireToken guards the admin routes of next with admin_token: when it
// is set, a request needs "Authorization: Bearer <admin_token>", except
// /check, which load balancers and systemd ask without credentials. The
// token is read per request, so a reload changes it at once. Ocelot's
// secret-in-path routes are answered before this (siteUpdates), with
// their own secrets, so Gazelle needs no change.
func requireToken(tkr *tracker.Tracker, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := tkr.Config().AdminToken
		if token == "" || r.URL.Path == "/check" || bearer(r.Header.Get("Authorization"), token) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="chihaya admin"`)
		http.Error(w, "401 Unauthorized: this endpoint needs Authorization: Bearer <admin_token>", http.StatusUnauthorized)
	})
}

// bearer reports whether the Authorization header h carries token as a
// bearer token (RFC 6750; the scheme's case does not matter). The
// comparison takes the same time whatever the header holds: both sides
// are hashed first, so not even the token's length shows.
func bearer(h, token string) bool {
	const scheme = "Bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return false
	}
	got, want := sha256.Sum256([]byte(strings.TrimSpace(h[len(scheme):]))), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}
