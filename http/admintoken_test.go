package http

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/config"
)

const adminToken = "an operator's token"

// adminRoutes are every admin endpoint of a private tracker with the
// profiler on, and what each answers without a token.
var adminRoutes = []string{
	"/check",
	"/stats",
	"/stats?flatten",
	"/metrics",
	"/debug/pprof/",
	"/debug/pprof/cmdline",
	"/" + secret + "/update?action=add_user&passkey=x&id=4",
	"/" + reportKey + "/report?get=stats",
}

// privateAdmin is a private tracker's public server and admin handler,
// with the profiler on and admin_token set to token.
func privateAdmin(t *testing.T, token string) (*Server, http.Handler) {
	t.Helper()
	s, _ := newPrivateServer(t)
	cfg := *s.tracker.Config()
	cfg.DebugPprof, cfg.AdminToken = true, token
	s.tracker.Reload(&cfg)
	return s, NewAdmin(s.tracker, s.stats).Handler()
}

func call(h http.Handler, target, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", target, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestAdminToken: with admin_token set, every admin endpoint but /check
// needs the token as a bearer token; Ocelot's secret-in-path routes keep
// their own secrets and need none. Without admin_token nothing needs one.
func TestAdminToken(t *testing.T) {
	_, admin := privateAdmin(t, adminToken)
	for _, target := range adminRoutes {
		open := target == "/check" || strings.HasPrefix(target, "/"+secret+"/") || strings.HasPrefix(target, "/"+reportKey+"/")
		for _, tc := range []struct {
			authorization string
			ok            bool
		}{
			{"", open},
			{"Bearer " + adminToken, true},
			{"bearer " + adminToken, true},
			{"Bearer  " + adminToken + " ", true},
			{"Bearer wrong", open},
			{"Bearer " + adminToken + "x", open},
			{"Bearer " + adminToken[:5], open},
			{"Basic " + adminToken, open},
			{adminToken, open},
			{"Bearer", open},
		} {
			rec := call(admin, target, tc.authorization)
			if ok := rec.Code == http.StatusOK; ok != tc.ok {
				t.Errorf("%s with Authorization %q: status %d, want served = %v", target, tc.authorization, rec.Code, tc.ok)
			}
			if !tc.ok && (rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "") {
				t.Errorf("%s with Authorization %q: status %d, WWW-Authenticate %q; want 401 with a challenge",
					target, tc.authorization, rec.Code, rec.Header().Get("WWW-Authenticate"))
			}
		}
	}
	// A wrong secret in the path is still Ocelot's failure, token or not.
	if body := call(admin, "/"+reportKey+"/update?action=add_user", "").Body.String(); body != "d14:failure reason22:Authentication failuree" {
		t.Errorf("wrong secret: %q", body)
	}

	_, admin = privateAdmin(t, "")
	for _, target := range adminRoutes {
		if rec := call(admin, target, ""); rec.Code != http.StatusOK {
			t.Errorf("%s without admin_token set: status %d", target, rec.Code)
		}
	}
}

// TestAdminTokenReloaded: a reload sets, changes or clears the token at
// once.
func TestAdminTokenReloaded(t *testing.T) {
	f := newAdminFixture(t, nil)
	admin := f.admin.Handler()
	set := func(token string) {
		cfg := *f.tkr.Config()
		cfg.AdminToken = token
		f.tkr.Reload(&cfg)
	}
	for _, step := range []struct {
		token, authorization string
		code                 int
	}{
		{"", "", 200},
		{"one", "", 401},
		{"one", "Bearer one", 200},
		{"two", "Bearer one", 401},
		{"two", "Bearer two", 200},
		{"", "Bearer two", 200},
	} {
		set(step.token)
		if rec := call(admin, "/stats", step.authorization); rec.Code != step.code {
			t.Errorf("admin_token %q, Authorization %q: status %d, want %d", step.token, step.authorization, rec.Code, step.code)
		}
	}
}

// TestPublicServesNoAdmin: the public listener answers none of the admin
// endpoints, with the token or without, public or private.
func TestPublicServesNoAdmin(t *testing.T) {
	private, _ := privateAdmin(t, adminToken)
	public := newTestServer(t, func(c *config.Config) { c.DebugPprof, c.AdminToken = true, adminToken })
	for name, s := range map[string]*Server{"public": public, "private": private} {
		for _, target := range append(adminRoutes, "/debug/pprof/heap", "/stats?pretty") {
			for _, authorization := range []string{"", "Bearer " + adminToken} {
				rec := call(s.Handler(), target, authorization)
				if rec.Code != http.StatusNotFound {
					t.Errorf("%s tracker, public listener, %s (Authorization %q): status %d %q, want 404",
						name, target, authorization, rec.Code, rec.Body)
				}
			}
		}
	}
}
