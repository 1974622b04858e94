package mysql

import (
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/golang/glog"
)

// Update applies one of Ocelot's site actions to the in-memory lists; it
// never touches the database. rawQuery is decoded as Ocelot decodes it:
// info_hash values are %-decoded, every other value is used raw. Unknown
// actions are ignored.
func (c *Conn) Update(action, rawQuery string) ([]byte, error) {
	p := ocelotParams(rawQuery)
	switch action {
	case "change_passkey":
		oldKey, newKey := p["oldpasskey"], p["newpasskey"]
		c.site.apply(func(s *siteState) {
			u, ok := s.users[oldKey]
			if !ok {
				glog.Warningf("mysql backend: change_passkey: no user with the old passkey")
				return
			}
			delete(s.users, oldKey)
			s.users[newKey] = u
		})
	case "add_torrent":
		hash, ok := infoHash(p["info_hash"])
		if !ok {
			glog.Warningf("mysql backend: add_torrent: info_hash is not 20 bytes")
			break
		}
		id := uint32(strToInt32(p["id"]))
		// In updates, a freetorrent other than 0, 1 or 2, even a missing
		// one, is neutral, as in Ocelot.
		free := freeType(p["freetorrent"], backend.Neutral)
		c.site.apply(func(s *siteState) {
			if t, ok := s.torrents[hash]; ok {
				t.free = free
				return
			}
			s.torrents[hash] = &torrent{id: id, free: free, tokened: map[uint32]struct{}{}}
			delete(s.reasons, hash)
		})
		c.acc.addStats(map[uint32]torrentStats{id: {}})
	case "update_torrent":
		free := freeType(p["freetorrent"], backend.Neutral)
		hash, ok := infoHash(p["info_hash"])
		if !ok {
			break
		}
		c.site.apply(func(s *siteState) {
			if t, ok := s.torrents[hash]; ok {
				t.free = free
			}
		})
	case "update_torrents":
		free := freeType(p["freetorrent"], backend.Neutral)
		hashes := hexDecode(p["info_hashes"])
		c.site.apply(func(s *siteState) {
			for i := 0; i+20 <= len(hashes); i += 20 {
				if t, ok := s.torrents[[20]byte([]byte(hashes[i:i+20]))]; ok {
					t.free = free
				}
			}
		})
	case "add_token", "remove_token":
		hash, ok := infoHash(p["info_hash"])
		if !ok {
			break
		}
		uid := uint32(strToInt32(p["userid"]))
		add := action == "add_token"
		c.site.apply(func(s *siteState) {
			t, ok := s.torrents[hash]
			if !ok {
				return
			}
			if add {
				t.tokened[uid] = struct{}{}
			} else {
				delete(t.tokened, uid)
			}
		})
	case "delete_torrent":
		hash, ok := infoHash(p["info_hash"])
		if !ok {
			break
		}
		reason := -1
		if v, ok := p["reason"]; ok {
			reason = int(strToInt32(v))
		}
		now := time.Now()
		c.site.apply(func(s *siteState) {
			if _, ok := s.torrents[hash]; !ok {
				return
			}
			delete(s.torrents, hash)
			s.reasons[hash] = delReason{code: reason, at: now}
		})
	case "add_user":
		passkey := p["passkey"]
		id := uint32(strToInt32(p["id"]))
		protected := p["visible"] == "0"
		c.site.apply(func(s *siteState) {
			if _, ok := s.users[passkey]; ok {
				return // Ocelot only un-deletes it; a deleted user is not listed here
			}
			u := &user{id: id, canLeech: true, protected: protected}
			s.users[passkey] = u
			s.byID[id] = u
		})
	case "remove_user":
		passkey := p["passkey"]
		c.site.apply(func(s *siteState) { s.removeUser(passkey) })
	case "remove_users":
		passkeys := p["passkeys"]
		c.site.apply(func(s *siteState) {
			for i := 0; i < len(passkeys); i += bittorrent.PasskeyLen {
				s.removeUser(passkeys[i:min(i+bittorrent.PasskeyLen, len(passkeys))])
			}
		})
	case "update_user":
		// Missing parameters mean can leech and visible, as in Ocelot.
		passkey := p["passkey"]
		canLeech := p["can_leech"] != "0"
		protected := p["visible"] == "0"
		c.site.apply(func(s *siteState) {
			if u, ok := s.users[passkey]; ok {
				u.canLeech, u.protected = canLeech, protected
			}
		})
	case "add_whitelist":
		prefix := p["peer_id"]
		c.site.apply(func(s *siteState) { s.whitelist = append(s.whitelist, prefix) })
	case "remove_whitelist":
		prefix := p["peer_id"]
		c.site.apply(func(s *siteState) { s.unwhitelist(prefix) })
	case "edit_whitelist":
		oldPrefix, newPrefix := p["old_peer_id"], p["new_peer_id"]
		c.site.apply(func(s *siteState) {
			s.unwhitelist(oldPrefix)
			s.whitelist = append(s.whitelist, newPrefix)
		})
	case "update_announce_interval":
		if v := strToInt32(p["new_announce_interval"]); v > 0 {
			c.announce.mu.Lock()
			c.announce.interval, c.announce.hasInt = time.Duration(v)*time.Second, true
			c.announce.mu.Unlock()
		}
	case "update_announce_jitter":
		if v := strToInt32(p["new_announce_jitter"]); v >= 0 {
			c.announce.mu.Lock()
			c.announce.jitter, c.announce.hasJit = time.Duration(v)*time.Second, true
			c.announce.mu.Unlock()
		}
	case "info_torrent":
		raw := p["info_hash"]
		var b strings.Builder
		b.WriteString(`{"hash":`)
		b.WriteString(raw)
		found := false
		if hash, ok := infoHash(raw); ok {
			c.site.mu.RLock()
			if t, ok := c.site.torrents[hash]; ok {
				found = true
				b.WriteString(`,"id":`)
				b.WriteString(strconv.FormatUint(uint64(t.id), 10))
				b.WriteString(`,"free":`)
				b.WriteString(strconv.Itoa(int(t.free)))
			}
			c.site.mu.RUnlock()
		}
		if !found {
			b.WriteString(`,"fail":1`)
		}
		b.WriteString("}\n")
		return []byte(b.String()), nil
	}
	return []byte("success"), nil
}

func (s *siteState) removeUser(passkey string) {
	u, ok := s.users[passkey]
	if !ok {
		return
	}
	delete(s.users, passkey)
	if s.byID[u.id] == u {
		delete(s.byID, u.id)
	}
}

func (s *siteState) unwhitelist(prefix string) {
	for i, p := range s.whitelist {
		if p == prefix {
			s.whitelist = append(s.whitelist[:i:i], s.whitelist[i+1:]...)
			return
		}
	}
}

// ocelotParams splits a query string as Ocelot's request parser does:
// pairs at '&', key from value at '=' (every '=' is dropped), nothing
// decoded, the last of a repeated key wins.
func ocelotParams(raw string) map[string]string {
	params := map[string]string{}
	var key, value strings.Builder
	parsingKey := true
	for i := 0; i <= len(raw); i++ {
		if i == len(raw) || raw[i] == '&' {
			params[key.String()] = value.String()
			key.Reset()
			value.Reset()
			parsingKey = true
			continue
		}
		switch ch := raw[i]; {
		case ch == '=':
			parsingKey = false
		case parsingKey:
			key.WriteByte(ch)
		default:
			value.WriteByte(ch)
		}
	}
	return params
}

// hexDecode is Ocelot's hex_decode, a URL decoder with its quirks: '+' is
// kept, a '%' needs two more characters to be decoded, and a non-hex digit
// counts as 0 (the first as '0' itself).
func hexDecode(in string) string {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		if in[i] == '%' && i+2 < len(in) {
			x := byte('0')
			i++
			if v, ok := hexDigit(in[i]); ok {
				x = v << 4
			}
			i++
			if v, ok := hexDigit(in[i]); ok {
				x += v
			}
			out = append(out, x)
			continue
		}
		out = append(out, in[i])
	}
	return string(out)
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func infoHash(raw string) ([20]byte, bool) {
	h := hexDecode(raw)
	if len(h) != 20 {
		return [20]byte{}, false
	}
	return [20]byte([]byte(h)), true
}

// strToInt32 reads a leading decimal integer as C++'s istream >> int32_t
// does: leading blanks skipped, an optional sign, digits up to the first
// non-digit, saturated on overflow, 0 if there is none.
func strToInt32(s string) int32 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var v int64
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		v = v*10 + int64(s[i]-'0')
		if v > math.MaxInt32+1 {
			v = math.MaxInt32 + 1
		}
	}
	if neg {
		v = -v
	}
	return int32(min(max(v, math.MinInt32), math.MaxInt32))
}

// Report answers Ocelot's report queries: get=stats (OPS's JSON: each
// figure as {"label":{"type":...,"value":...}}) and get=user&key=<passkey>
// ({"id","leeching","seeding","deleted","protected","can_leech"}). Errors
// carry Ocelot's failure messages.
func (c *Conn) Report(query url.Values) ([]byte, error) {
	switch query.Get("get") {
	case "stats":
		return c.statsReport(), nil
	case "user":
		key := query.Get("key")
		if key == "" {
			//lint:ignore ST1005 Ocelot's words, which the site shows as they are
			return nil, errors.New("Announce key missing")
		}
		u, ok := c.User(key)
		if !ok {
			//lint:ignore ST1005 Ocelot's words, which the site shows as they are
			return nil, errors.New("Announce key not found")
		}
		leeching, seeding := c.acc.peerCounts(u.ID, time.Now().Add(-peerWindow).Unix())
		var b strings.Builder
		b.WriteString(`{"id":`)
		b.WriteString(strconv.FormatUint(uint64(u.ID), 10))
		b.WriteString(`,"leeching":`)
		b.WriteString(strconv.Itoa(leeching))
		b.WriteString(`,"seeding":`)
		b.WriteString(strconv.Itoa(seeding))
		b.WriteString(`,"deleted":0,"protected":`)
		b.WriteString(boolDigit(u.Protected))
		b.WriteString(`,"can_leech":`)
		b.WriteString(boolDigit(u.CanLeech))
		b.WriteString("}\n")
		return []byte(b.String()), nil
	}
	return nil, errors.New("unrecognized report query")
}

func boolDigit(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

func (c *Conn) statsReport() []byte {
	var b strings.Builder
	first := true
	item := func(label, typ, value string) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(strconv.Quote(label))
		b.WriteString(`:{"type":"`)
		b.WriteString(typ)
		b.WriteString(`","value":`)
		b.WriteString(value)
		b.WriteByte('}')
	}
	num := func(label string, v int64) { item(label, "number", strconv.FormatInt(v, 10)) }

	leeching, seeding := c.acc.peerCounts(0, time.Now().Add(-peerWindow).Unix())
	users, torrents, peers, snatches, tokens := c.acc.tableDepths()
	tokenExpiries := 0
	if c.comm != nil {
		tokenExpiries = c.comm.queued()
	}
	b.WriteByte('{')
	item("version", "string", `"chihaya"`)
	num("leechers tracked", int64(leeching))
	num("seeders tracked", int64(seeding))
	num("items in user queue", int64(users))
	num("items in torrent queue", int64(torrents))
	num("items in peer queue", int64(peers))
	num("items in snatch queue", int64(snatches))
	num("items in token queue", int64(tokens))
	num("items in token expiry queue", int64(tokenExpiries))
	num("rows being flushed", int64(c.fl.InFlight()))
	num("flush errors", int64(c.FlushErrors()))
	num("rows dropped", int64(c.DroppedRows()))
	num("users", int64(c.site.userCount()))
	num("torrents", int64(c.site.torrentCount()))
	if d, ok := c.AnnounceInterval(); ok {
		num("announce interval", int64(d/time.Second))
	}
	if d, ok := c.AnnounceJitter(); ok {
		num("announce jitter", int64(d/time.Second))
	}
	item("uptime", "elapsed", strconv.FormatInt(int64(time.Since(c.start)/time.Second), 10))
	b.WriteString("}\n")
	return []byte(b.String())
}
