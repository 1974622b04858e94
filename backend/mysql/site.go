package mysql

import (
	"context"
	"sync"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// user is a site user as Ocelot keeps one.
type user struct {
	id        uint32
	canLeech  bool
	protected bool
	mul       *multipliers // nil: 1.0 both ways
}

// torrent is a registered torrent as Ocelot keeps one.
type torrent struct {
	id      uint32
	free    backend.FreeType
	tokened map[uint32]struct{} // users holding a freeleech token on it
	mul     *multipliers        // nil: 1.0 both ways
}

type delReason struct {
	code int
	at   time.Time
}

// siteState is what the tracker asks on every announce, answered from
// memory under a read lock. Updates and reloads take the write lock.
type siteState struct {
	mu        sync.RWMutex
	users     map[string]*user // by passkey
	byID      map[uint32]*user
	torrents  map[[20]byte]*torrent
	whitelist []string
	reasons   map[[20]byte]delReason

	// While a reload reads the database, the site's updates are applied
	// to the old state and remembered here, to be applied again to the
	// new one: none is lost to the swap.
	reloading int
	replay    []func(*siteState)

	reloadMu sync.Mutex // one reload at a time
}

func (s *siteState) init() {
	s.users = map[string]*user{}
	s.byID = map[uint32]*user{}
	s.torrents = map[[20]byte]*torrent{}
	s.reasons = map[[20]byte]delReason{}
}

// apply runs an update under the write lock.
func (s *siteState) apply(f func(*siteState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
	if s.reloading > 0 {
		s.replay = append(s.replay, f)
	}
}

func (s *siteState) userCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.users)
}

func (s *siteState) torrentCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.torrents)
}

func (s *siteState) whitelistLen() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.whitelist)
}

func (s *siteState) expireReasons(now time.Time, lifetime time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, r := range s.reasons {
		if now.Sub(r.at) > lifetime {
			delete(s.reasons, h)
		}
	}
}

// creditTerms is what the site says of an announce's torrent and user, for
// the credit rules, and whether the user's address must be kept out of the
// database. A torrent not loaded, or loaded under another id, counts as a
// normal one.
func (s *siteState) creditTerms(hash bittorrent.InfoHash, tid, uid uint32) (t creditTerms, protected bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if tor, ok := s.torrents[hash]; ok && tor.id == tid {
		t.free, t.torMul = tor.free, tor.mul
		_, t.tokened = tor.tokened[uid]
	}
	if u, ok := s.byID[uid]; ok {
		t.userMul, protected = u.mul, u.protected
	}
	return t, protected
}

// User returns the enabled user with passkey.
func (c *Conn) User(passkey string) (backend.User, bool) {
	c.site.mu.RLock()
	u, ok := c.site.users[passkey]
	var out backend.User
	if ok {
		out = backend.User{ID: u.id, CanLeech: u.canLeech, Protected: u.protected}
	}
	c.site.mu.RUnlock()
	return out, ok
}

// Torrent returns the registered torrent with the info_hash, or the reason
// the site gave when it deleted it (for del_reason_lifetime).
func (c *Conn) Torrent(infoHash bittorrent.InfoHash) (backend.Torrent, bool, string) {
	c.site.mu.RLock()
	defer c.site.mu.RUnlock()
	if t, ok := c.site.torrents[infoHash]; ok {
		return backend.Torrent{ID: t.id, Free: t.free}, true, ""
	}
	r, ok := c.site.reasons[infoHash]
	if !ok || time.Since(r.at) > c.p.DeleteReasonLifetime.Duration {
		return backend.Torrent{}, false, ""
	}
	return backend.Torrent{}, false, DeleteReason(r.code)
}

// ClientAllowed reports whether the peer_id starts with a whitelisted
// prefix; an empty whitelist allows every client.
func (c *Conn) ClientAllowed(peerID bittorrent.PeerID) bool {
	c.site.mu.RLock()
	defer c.site.mu.RUnlock()
	if len(c.site.whitelist) == 0 {
		return true
	}
	for _, prefix := range c.site.whitelist {
		if len(prefix) <= 20 && string(peerID[:len(prefix)]) == prefix {
			return true
		}
	}
	return false
}

// deleteReasons are Ocelot's names of Gazelle's deletion reason codes
// (worker::get_del_reason).
var deleteReasons = [...]string{
	"Dupe", "Trump", "Bad File Names", "Bad Folder Names", "Bad Tags",
	"Disallowed Format", "Discs Missing", "Discography", "Edited Log",
	"Inaccurate Bitrate", "Low Bitrate", "Mutt Rip", "Disallowed Source",
	"Encode Errors", "Specifically Banned", "Tracks Missing", "Transcode",
	"Unapproved Cassette", "Unsplit Album", "User Compilation",
	"Wrong Format", "Wrong Media", "Audience Recording",
}

// DeleteReason names a deletion reason code (0-22); any other code has no
// name, and the announcer gets a plain "Unregistered torrent".
func DeleteReason(code int) string {
	if code < 0 || code >= len(deleteReasons) {
		return ""
	}
	return deleteReasons[code]
}

// Reload reads users, torrents (with their tokens) and the whitelist again,
// as Ocelot does on SIGUSR1, and swaps them in. Announces are answered
// from the old lists meanwhile (Ocelot refuses them); the site's updates
// that arrive during the read are applied to the new lists too. A torrent
// keeps its in-memory balance and snatch count.
func (c *Conn) Reload(ctx context.Context) error {
	s := &c.site
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()

	s.mu.Lock()
	s.reloading++
	s.mu.Unlock()
	if c.duringReload != nil {
		c.duringReload()
	}
	l, err := c.load(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloading--
	replay := s.replay
	if s.reloading == 0 {
		s.replay = nil
	}
	if err != nil {
		return err
	}
	s.users, s.byID, s.torrents, s.whitelist = l.users, l.byID, l.torrents, l.whitelist
	for _, f := range replay {
		f(s)
	}
	c.acc.addStats(l.stats)
	return nil
}
