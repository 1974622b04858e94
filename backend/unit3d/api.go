package unit3d

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/golang/glog"
)

// This file is the site's API (unit3d.md §2): the requests UNIT3D's
// Unit3dAnnounce service sends to /announce/<api_key>/<path>. Success is
// status 200 exactly; a body that fails to decode, lacks a field or has a
// wrong type is 422 (400 for a bad info_hash or passkey) and changes
// nothing.

// SiteRequest answers one request of the site's API. path is what follows
// /announce/; a wrong key is 404, as in UNIT3D-Announce, whose routes
// contain the key.
func (c *Conn) SiteRequest(method, path, contentType string, body []byte) (int, string, []byte) {
	key, rest, _ := strings.Cut(path, "/")
	if subtle.ConstantTimeCompare([]byte(key), []byte(c.p.APIKey)) != 1 {
		return http.StatusNotFound, textPlain, []byte("Not Found")
	}
	c.rates.request(time.Now())
	rest = strings.TrimSuffix(rest, "/")
	if id, ok := strings.CutPrefix(rest, "torrents/"); ok && method == http.MethodGet {
		return c.getTorrent(id)
	}
	if id, ok := strings.CutPrefix(rest, "users/"); ok && method == http.MethodGet {
		return c.getUser(id)
	}
	switch method + " " + rest {
	case "GET stats":
		return http.StatusOK, appJSON, c.rates.appendJSON(nil)
	case "POST config/reload":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Reload(ctx); err != nil {
			return http.StatusInternalServerError, textPlain, []byte("Ignoring config reload. " + err.Error())
		}
		return http.StatusOK, textPlain, []byte("Successfully reloaded config.")
	}
	h, ok := c.routes[method+" "+rest]
	if !ok {
		return http.StatusNotFound, textPlain, []byte("Not Found")
	}
	if mt, _, _ := strings.Cut(contentType, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		return http.StatusUnsupportedMediaType, textPlain, []byte("Expected request with `Content-Type: application/json`")
	}
	if err := h(body); err != nil {
		status := http.StatusUnprocessableEntity
		var bad badRequest
		if errors.As(err, &bad) {
			status = http.StatusBadRequest
		}
		glog.Warningf("unit3d backend: %s %s refused: %v", method, rest, err)
		return status, textPlain, []byte(err.Error())
	}
	return http.StatusOK, textPlain, nil
}

const (
	textPlain = "text/plain; charset=utf-8"
	appJSON   = "application/json"
)

// badRequest is a body that decodes but that UNIT3D-Announce answers 400.
type badRequest string

func (e badRequest) Error() string { return string(e) }

// decode reads body into v (whose fields are pointers) strictly: a wrong
// type or a negative number for an unsigned field is an error, and so is a
// field that required (called after decoding) lists as nil, i.e. missing
// or null.
func decode(body []byte, v any, required func() []any) error {
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
		//lint:ignore ST1005 UNIT3D-Announce's words, which the site logs as they are
		return fmt.Errorf("Failed to deserialize the JSON body into the target type: %v", err)
	}
	for i, f := range required() {
		if isNil(f) {
			//lint:ignore ST1005 UNIT3D-Announce's words, which the site logs as they are
			return fmt.Errorf("Failed to deserialize the JSON body into the target type: missing field #%d", i+1)
		}
	}
	return nil
}

func isNil(p any) bool {
	switch p := p.(type) {
	case *uint32:
		return p == nil
	case *int32:
		return p == nil
	case *int16:
		return p == nil
	case *uint8:
		return p == nil
	case *bool:
		return p == nil
	case *string:
		return p == nil
	}
	panic(fmt.Sprintf("unit3d: decode: unexpected field type %T", p))
}

// handlers are the PUT and DELETE routes, by method and path.
func (c *Conn) handlers() map[string]func([]byte) error {
	return map[string]func([]byte) error{
		"PUT torrents":              c.putTorrent,
		"DELETE torrents":           c.deleteTorrent,
		"PUT users":                 c.putUser,
		"DELETE users":              c.deleteUser,
		"PUT groups":                c.putGroup,
		"DELETE groups":             c.deleteGroup,
		"PUT blacklisted-agents":    c.agent(true),
		"DELETE blacklisted-agents": c.agent(false),
		"PUT freeleech-tokens":      c.token(true),
		"DELETE freeleech-tokens":   c.token(false),
		"PUT personal-freeleech":    c.personal(true),
		"DELETE personal-freeleech": c.personal(false),
		"PUT featured-torrents":     c.featured(true),
		"DELETE featured-torrents":  c.featured(false),
	}
}

func (c *Conn) putTorrent(body []byte) error {
	var v struct {
		ID             *uint32 `json:"id"`
		Status         *int16  `json:"status"`
		InfoHash       *string `json:"info_hash"`
		IsDeleted      *bool   `json:"is_deleted"`
		Seeders        *uint32 `json:"seeders"`
		Leechers       *uint32 `json:"leechers"`
		TimesCompleted *uint32 `json:"times_completed"`
		DownloadFactor *uint8  `json:"download_factor"`
		UploadFactor   *uint8  `json:"upload_factor"`
	}
	if err := decode(body, &v, func() []any {
		return []any{v.ID, v.Status, v.InfoHash, v.IsDeleted, v.Seeders, v.Leechers, v.TimesCompleted, v.DownloadFactor, v.UploadFactor}
	}); err != nil {
		return err
	}
	if *v.Status < 0 || *v.Status > statusUnknown {
		return fmt.Errorf("status: unknown variant %d", *v.Status)
	}
	var h bittorrent.InfoHash
	if len(*v.InfoHash) != 40 {
		return badRequest("Invalid info_hash.")
	}
	if _, err := hex.Decode(h[:], []byte(*v.InfoHash)); err != nil {
		return badRequest("Invalid info_hash.")
	}
	s := c.st
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.torrents[*v.ID]
	peers, listed := map[peerKey]*peer{}, 0
	if t != nil {
		peers, listed = t.peers, t.listed
	}
	s.torrents[*v.ID] = &torrent{
		id: *v.ID, status: *v.Status, deleted: *v.IsDeleted,
		seeders: *v.Seeders, leechers: *v.Leechers, completed: *v.TimesCompleted,
		downFactor: *v.DownloadFactor, upFactor: *v.UploadFactor, peers: peers, listed: listed,
	}
	s.hashes[h] = *v.ID
	return nil
}

func (c *Conn) deleteTorrent(body []byte) error {
	var v struct {
		ID *uint32 `json:"id"`
	}
	if err := decode(body, &v, func() []any { return []any{v.ID} }); err != nil {
		return err
	}
	s := c.st
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.torrents[*v.ID]
	if t == nil {
		return badRequest("Torrent not found.")
	}
	t.deleted = true
	return nil
}

func (c *Conn) putUser(body []byte) error {
	var v struct {
		ID          *uint32 `json:"id"`
		GroupID     *int32  `json:"group_id"`
		Passkey     *string `json:"passkey"`
		NewPasskey  *string `json:"new_passkey"`
		CanDownload *bool   `json:"can_download"`
		IsDonor     *bool   `json:"is_donor"`
		IsLifetime  *bool   `json:"is_lifetime"`
		NumSeeding  *uint32 `json:"num_seeding"`
		NumLeeching *uint32 `json:"num_leeching"`
	}
	if err := decode(body, &v, func() []any {
		return []any{v.ID, v.GroupID, v.Passkey, v.CanDownload, v.IsDonor, v.IsLifetime, v.NumSeeding, v.NumLeeching}
	}); err != nil {
		return err
	}
	// Both passkeys are checked before anything changes (UNIT3D-Announce
	// removes the user before it checks new_passkey).
	if len(*v.Passkey) != bittorrent.PasskeyLen {
		return badRequest("Invalid passkey.")
	}
	if v.NewPasskey != nil && len(*v.NewPasskey) != bittorrent.PasskeyLen {
		return badRequest("Invalid new passkey.")
	}
	s := c.st
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	u := &user{
		id: *v.ID, group: *v.GroupID, passkey: *v.Passkey,
		canDownload: *v.CanDownload, donor: *v.IsDonor, lifetime: *v.IsLifetime,
		seeding: *v.NumSeeding, leeching: *v.NumLeeching,
	}
	if old := s.users[*v.ID]; old != nil {
		u.seedList, u.leechList = old.seedList, old.leechList
	} else {
		u.seedList, u.leechList = newLimiter(c.p.seedRates, now), newLimiter(c.p.leechRates, now)
	}
	if v.NewPasskey != nil {
		delete(s.passkeys, *v.Passkey)
		u.passkey = *v.NewPasskey
	}
	s.users[u.id] = u
	s.passkeys[u.passkey] = u.id
	return nil
}

func (c *Conn) deleteUser(body []byte) error {
	var v struct {
		ID      *uint32 `json:"id"`
		Passkey *string `json:"passkey"`
	}
	if err := decode(body, &v, func() []any { return []any{v.ID, v.Passkey} }); err != nil {
		return err
	}
	if len(*v.Passkey) != bittorrent.PasskeyLen {
		return badRequest("Invalid passkey.")
	}
	s := c.st
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, *v.ID)
	delete(s.passkeys, *v.Passkey)
	return nil
}

func (c *Conn) putGroup(body []byte) error {
	var v struct {
		ID             *int32  `json:"id"`
		Slug           *string `json:"slug"`
		DownloadSlots  *uint32 `json:"download_slots"` // null: unlimited
		IsImmune       *bool   `json:"is_immune"`
		IsFreeleech    *bool   `json:"is_freeleech"`
		IsDoubleUpload *bool   `json:"is_double_upload"`
	}
	if err := decode(body, &v, func() []any { return []any{v.ID, v.Slug, v.IsImmune, v.IsFreeleech, v.IsDoubleUpload} }); err != nil {
		return err
	}
	g := &group{id: *v.ID, slug: *v.Slug, slots: -1, immune: *v.IsImmune, downFactor: 100, upFactor: 100}
	if v.DownloadSlots != nil {
		g.slots = int64(*v.DownloadSlots)
	}
	if *v.IsFreeleech {
		g.downFactor = 0
	}
	if *v.IsDoubleUpload {
		g.upFactor = 200
	}
	c.st.mu.Lock()
	c.st.groups[g.id] = g
	c.st.mu.Unlock()
	return nil
}

func (c *Conn) deleteGroup(body []byte) error {
	var v struct {
		ID *int32 `json:"id"`
	}
	if err := decode(body, &v, func() []any { return []any{v.ID} }); err != nil {
		return err
	}
	c.st.mu.Lock()
	delete(c.st.groups, *v.ID)
	c.st.mu.Unlock()
	return nil
}

// agent adds or removes a blacklisted peer_id prefix. UNIT3D sends the
// entry's name, not its prefix (unit3d.md §2.3.6), so the prefixes are
// also read again from blacklist_clients: at once on an addition (the
// site has committed the row), a few seconds later on a removal (the site
// deletes the row after the call).
func (c *Conn) agent(add bool) func([]byte) error {
	return func(body []byte) error {
		var v struct {
			Prefix *string `json:"peer_id_prefix"`
		}
		if err := decode(body, &v, func() []any { return []any{v.Prefix} }); err != nil {
			return err
		}
		c.st.mu.Lock()
		if add {
			c.st.apiAgents[*v.Prefix] = struct{}{}
		} else {
			delete(c.st.apiAgents, *v.Prefix)
		}
		c.st.mu.Unlock()
		if add {
			c.reloadAgents()
		} else {
			c.later(agentReloadDelay, c.reloadAgents)
		}
		return nil
	}
}

// agentReloadDelay is how long after a blacklist removal its table is read.
const agentReloadDelay = 5 * time.Second

func (c *Conn) reloadAgents() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.loadAgents(ctx); err != nil {
		glog.Errorf("unit3d backend: reading blacklist_clients: %v", err)
	}
}

func (c *Conn) token(add bool) func([]byte) error {
	return func(body []byte) error {
		var v struct {
			UserID    *uint32 `json:"user_id"`
			TorrentID *uint32 `json:"torrent_id"`
		}
		if err := decode(body, &v, func() []any { return []any{v.UserID, v.TorrentID} }); err != nil {
			return err
		}
		setMember(c.st, c.st.tokens, tokenKey{*v.UserID, *v.TorrentID}, add)
		return nil
	}
}

func (c *Conn) personal(add bool) func([]byte) error {
	return func(body []byte) error {
		var v struct {
			UserID *uint32 `json:"user_id"`
		}
		if err := decode(body, &v, func() []any { return []any{v.UserID} }); err != nil {
			return err
		}
		setMember(c.st, c.st.personal, *v.UserID, add)
		return nil
	}
}

func (c *Conn) featured(add bool) func([]byte) error {
	return func(body []byte) error {
		var v struct {
			TorrentID *uint32 `json:"torrent_id"`
		}
		if err := decode(body, &v, func() []any { return []any{v.TorrentID} }); err != nil {
			return err
		}
		setMember(c.st, c.st.featured, *v.TorrentID, add)
		return nil
	}
}

func setMember[K comparable](s *state, set map[K]struct{}, k K, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		set[k] = struct{}{}
	} else {
		delete(set, k)
	}
}

// The GET routes' JSON (unit3d.md §2.4): shapes UNIT3D checks strictly.
type (
	peerJSON struct {
		UserID           uint32 `json:"user_id"`    // for v9.0.5 to v9.1.5 sites
		TorrentID        uint32 `json:"torrent_id"` // likewise
		IPAddress        string `json:"ip_address"`
		Port             uint16 `json:"port"`
		IsSeeder         bool   `json:"is_seeder"`
		IsActive         bool   `json:"is_active"`
		IsVisible        bool   `json:"is_visible"`
		IsConnectable    bool   `json:"is_connectable"`
		HasSentCompleted bool   `json:"has_sent_completed"`
		UpdatedAt        int64  `json:"updated_at"`
		Uploaded         uint64 `json:"uploaded"`
		Downloaded       uint64 `json:"downloaded"`
	}
	torrentJSON struct {
		ID             uint32              `json:"id"`
		Status         string              `json:"status"`
		IsDeleted      bool                `json:"is_deleted"`
		Peers          map[string]peerJSON `json:"peers"`
		Seeders        uint32              `json:"seeders"`
		Leechers       uint32              `json:"leechers"`
		TimesCompleted uint32              `json:"times_completed"`
		DownloadFactor uint8               `json:"download_factor"`
		UploadFactor   uint8               `json:"upload_factor"`
	}
	rateJSON struct {
		Count     jsonFloat `json:"count"`
		MaxCount  jsonFloat `json:"max_count"`
		Window    jsonFloat `json:"window"`
		UpdatedAt jsonFloat `json:"updated_at"`
	}
	ratesJSON struct {
		Rates []rateJSON `json:"rates"`
	}
	userJSON struct {
		ID          uint32    `json:"id"`
		GroupID     int32     `json:"group_id"`
		Passkey     string    `json:"passkey"`
		CanDownload bool      `json:"can_download"`
		NumSeeding  uint32    `json:"num_seeding"`
		NumLeeching uint32    `json:"num_leeching"`
		IsDonor     bool      `json:"is_donor"`
		IsLifetime  bool      `json:"is_lifetime"`
		SeedRates   ratesJSON `json:"receive_seed_list_rates"`
		LeechRates  ratesJSON `json:"receive_leech_list_rates"`
	}
)

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

func (c *Conn) getTorrent(id string) (int, string, []byte) {
	n, ok := parseID(id)
	if !ok {
		return http.StatusBadRequest, textPlain, []byte("Invalid torrent id.")
	}
	s := c.st
	s.mu.Lock()
	t := s.torrents[n]
	if t == nil {
		s.mu.Unlock()
		return http.StatusNotFound, textPlain, []byte("Torrent not found.")
	}
	v := torrentJSON{
		ID: t.id, Status: statusNames[t.status], IsDeleted: t.deleted, Peers: map[string]peerJSON{},
		Seeders: t.seeders, Leechers: t.leechers, TimesCompleted: t.completed,
		DownloadFactor: t.downFactor, UploadFactor: t.upFactor,
	}
	for k, p := range t.peers {
		v.Peers[strconv.FormatUint(uint64(k.uid), 10)+"-"+strings.ToUpper(hex.EncodeToString(k.id[:]))] = peerJSON{
			UserID: k.uid, TorrentID: t.id,
			IPAddress: p.addr.Addr().String(), Port: p.addr.Port(),
			IsSeeder: p.seeder, IsActive: p.active, IsVisible: p.visible, IsConnectable: p.connectable,
			HasSentCompleted: p.sentCompleted, UpdatedAt: p.updated.Unix(),
			Uploaded: p.uploaded, Downloaded: p.downloaded,
		}
	}
	s.mu.Unlock()
	return jsonReply(v)
}

func (c *Conn) getUser(id string) (int, string, []byte) {
	n, ok := parseID(id)
	if !ok {
		return http.StatusBadRequest, textPlain, []byte("Invalid user id.")
	}
	s := c.st
	s.mu.Lock()
	u := s.users[n]
	if u == nil {
		s.mu.Unlock()
		return http.StatusNotFound, textPlain, []byte("User not found.")
	}
	v := userJSON{
		ID: u.id, GroupID: u.group, Passkey: u.passkey, CanDownload: u.canDownload,
		NumSeeding: u.seeding, NumLeeching: u.leeching, IsDonor: u.donor, IsLifetime: u.lifetime,
		SeedRates: ratesOf(u.seedList), LeechRates: ratesOf(u.leechList),
	}
	s.mu.Unlock()
	return jsonReply(v)
}

func ratesOf(l *limiter) ratesJSON {
	out := ratesJSON{Rates: []rateJSON{}}
	for _, r := range l.rates {
		out.Rates = append(out.Rates, rateJSON{jsonFloat(r.count), jsonFloat(r.max), jsonFloat(r.window), jsonFloat(r.updated)})
	}
	return out
}

func jsonReply(v any) (int, string, []byte) {
	b, err := json.Marshal(v)
	if err != nil {
		return http.StatusInternalServerError, textPlain, []byte(err.Error())
	}
	return http.StatusOK, appJSON, b
}
