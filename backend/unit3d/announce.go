package unit3d

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// This file is UNIT3D-Announce's announce (unit3d.md §4.4 to §4.8 and §5):
// the checks from the blacklist on, in order, with their exact messages;
// the peer rules; the peer list; the credit; the rows queued.

// Intervals UNIT3D-Announce hard-codes.
const (
	failureInterval  = 5400 * time.Second // every failure reply
	moderationRetry  = 30 * time.Second   // critical warning of a torrent in moderation
	stoppedUnknownIn = 5400 * time.Second // critical warning "Stopped peer doesn't exist."
)

// Warnings (§4.4) that do not stop an announce.
const (
	warnConnectivity = "Connectivity issue detected. Enable port-forwarding to resolve."
	warnSlots        = "Download slot limit reached"
)

// browserWords in a lower-cased User-Agent mark a browser, crawler or cheater.
var browserWords = []string{"mozilla", "browser", "chrome", "safari", "applewebkit", "opera", "links", "lynx", "bot", "unknown"}

// blacklistedPort reports whether UNIT3D-Announce refuses port (§3 step 1).
func blacklistedPort(port uint16) bool {
	switch port {
	case 1214, 3389, 4662, 6346, 6347, 6699, 8080, 8081:
		return true
	}
	return port < 1024
}

var moderationMessages = map[int16]string{
	statusPending:   "Torrent is pending moderation.",
	statusRejected:  "Torrent has been rejected.",
	statusPostponed: "Torrent has been postponed.",
}

// Announce answers one announce by UNIT3D-Announce's rules. The checks
// the HTTP frontend can make alone (the query, the client's address, the
// headers, the User-Agent's form and length) are made before.
func (c *Conn) Announce(req *backend.AnnounceRequest, r *backend.AnnounceReply) {
	*r = backend.AnnounceReply{Peers4: r.Peers4[:0], Peers6: r.Peers6[:0]}
	now := req.Time
	if now.IsZero() {
		now = time.Now()
	}
	c.rates.request(now)
	s := c.st
	s.mu.Lock()
	tid, ok := c.checkClient(req, r, now)
	s.mu.Unlock()
	if !ok {
		return
	}
	connectable := false
	if c.p.ConnectivityCheck {
		connectable = c.reachable(req.Addr, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.announce(req, r, tid, connectable, now)
}

func fail(r *backend.AnnounceReply, msg string) {
	*r = backend.AnnounceReply{Failure: msg, Interval: failureInterval, MinInterval: failureInterval, Peers4: r.Peers4[:0], Peers6: r.Peers6[:0]}
}

// critical is a "successful" reply that ends the announce, so that clients
// neither back off nor loop.
func critical(r *backend.AnnounceReply, msg string, interval time.Duration) {
	*r = backend.AnnounceReply{Warning: msg, Interval: interval, MinInterval: interval, Peers4: r.Peers4[:0], Peers6: r.Peers6[:0]}
}

// checkClient runs checks 7 to 11 (§4.4) and returns the torrent's id.
// s.mu is held.
func (c *Conn) checkClient(req *backend.AnnounceRequest, r *backend.AnnounceReply, now time.Time) (uint32, bool) {
	s := c.st
	if s.blacklisted(req.PeerID) {
		fail(r, "Client is not acceptable. Please check our blacklist.")
		return 0, false
	}
	ua := strings.ToLower(req.UserAgent)
	for _, w := range browserWords {
		if strings.Contains(ua, w) {
			fail(r, "Browser, crawler or cheater is not allowed.")
			return 0, false
		}
	}
	if req.Event != bittorrent.Stopped && blacklistedPort(req.Addr.Port()) {
		fail(r, "Illegal port: "+strconv.Itoa(int(req.Addr.Port()))+". Port should be between 6881-64999.")
		return 0, false
	}
	if len(req.Passkey) != bittorrent.PasskeyLen {
		fail(r, "Invalid passkey.")
		return 0, false
	}
	tid, ok := s.hashes[req.InfoHash]
	if !ok {
		c.queueUnregistered(req, now)
		fail(r, "InfoHash not found.")
		return 0, false
	}
	return tid, true
}

// queueUnregistered queues an unregistered_info_hashes row if the passkey
// is a loaded user's. s.mu is held.
func (c *Conn) queueUnregistered(req *backend.AnnounceRequest, now time.Time) {
	uid, ok := c.st.passkeys[req.Passkey]
	if _, loaded := c.st.users[uid]; !ok || !loaded {
		return
	}
	at := now.UTC()
	c.q.Add(func(b *batch) { b.addUIH(uihKey{req.InfoHash, uid}, uihRow{created: at, updated: at}) })
}

// reachable is the connectivity check (check 12): a TCP connection to the
// peer within 500 ms, cached per address for connectivity_check_interval.
func (c *Conn) reachable(addr netip.AddrPort, now time.Time) bool {
	ttl := c.p.ConnectivityCheckInterval.Duration
	c.st.mu.Lock()
	got, ok := c.st.reachable[addr]
	c.st.mu.Unlock()
	if ok && ttl >= 0 && now.Sub(got.at) < ttl {
		return got.ok
	}
	conn, err := net.DialTimeout("tcp", addr.String(), 500*time.Millisecond)
	if err == nil {
		conn.Close()
	}
	c.st.mu.Lock()
	c.st.reachable[addr] = reach{ok: err == nil, at: now}
	c.st.mu.Unlock()
	return err == nil
}

// announce runs checks 13 to 23 and, if they pass, the announce itself.
// s.mu is held.
func (c *Conn) announce(req *backend.AnnounceRequest, r *backend.AnnounceReply, tid uint32, connectable bool, now time.Time) {
	s, p := c.st, &c.p
	t := s.torrents[tid]
	switch {
	case t == nil:
		fail(r, "Torrent not found.")
		return
	case t.deleted:
		c.queueUnregistered(req, now)
		fail(r, "Torrent has been deleted.")
		return
	case t.status == statusUnknown:
		fail(r, "Torrent not approved.")
		return
	case t.status != statusApproved:
		critical(r, moderationMessages[t.status], moderationRetry)
		return
	}
	uid, ok := s.passkeys[req.Passkey]
	if !ok {
		fail(r, "Passkey does not exist. Please re-download the .torrent file.")
		return
	}
	u := s.users[uid]
	if u == nil {
		fail(r, "User does not exist. Please re-download the .torrent file.")
		return
	}
	if !u.canDownload && req.Left != 0 {
		fail(r, "Your downloading privileges have been disabled.")
		return
	}
	g := s.groups[u.group]
	if g == nil {
		fail(r, "Group not found.")
		return
	}
	switch g.slug {
	case "banned", "validating", "disabled":
		fail(r, "Your account is not enabled. (Current: "+g.slug+").")
		return
	}
	key := peerKey{u.id, req.PeerID}
	old, exists := t.peers[key]
	stopped := req.Event == bittorrent.Stopped
	if stopped && !exists {
		critical(r, "Stopped peer doesn't exist.", stoppedUnknownIn)
		return
	}
	if !stopped && !exists {
		n := 1
		for k, q := range t.peers {
			if k.uid == u.id && q.active {
				n++
			}
		}
		if n > int(p.MaxPeersPerTorrentPerUser) {
			fail(r, "You already have "+strconv.Itoa(int(p.MaxPeersPerTorrentPerUser))+" peers on this torrent. Ignoring.")
			return
		}
	}

	// The announce passes: the peer's new state and its deltas (§4.5).
	inList := c.inList
	seeder := req.Left == 0
	var (
		oldSeed, oldLeech, newSeed, newLeech bool
		upDelta, downDelta                   uint64
		completedDelta                       int
		rateLimited, activeAfterStop         bool
		warnings                             []string
		visible                              bool
		v6                                   = req.Addr.Addr().Is6()
	)
	if exists {
		oldSeed, oldLeech = old.seeder && inList(old), !old.seeder && inList(old)
		v6 = old.v6
	}
	if p.ConnectivityCheck && p.RequirePeerConnectivity && !connectable {
		warnings = append(warnings, warnConnectivity)
	}
	if stopped {
		upDelta, downDelta = satSub(req.Uploaded, old.uploaded), satSub(req.Downloaded, old.downloaded)
		delete(t.peers, key)
		for k, q := range t.peers {
			if k.uid == u.id && q.active {
				activeAfterStop = true
				break
			}
		}
	} else {
		slotLimited := req.Left > 0 && g.slots >= 0 && int64(u.leeching) >= g.slots
		q := old
		if !exists {
			visible = !slotLimited
			q = &peer{sentCompleted: req.Event == bittorrent.Completed, v6: v6}
			t.peers[key] = q
		} else {
			visible = (old.active && old.visible && !seeder && (connectable || !p.RequirePeerConnectivity)) || !slotLimited
			// A dual-stacked peer's announces over each family are
			// limited apart: its IPv6 announce, right after its IPv4
			// one, gets its IPv6 peers.
			last := old.updated
			if req.DualStacked {
				last = old.lastFrom(req.Addr)
			}
			rateLimited = last.Add(p.AnnounceMinEnforced.Duration).After(now) &&
				!(req.Event == bittorrent.Completed && !old.sentCompleted)
			if req.Uploaded >= old.uploaded && req.Downloaded >= old.downloaded {
				upDelta, downDelta = req.Uploaded-old.uploaded, req.Downloaded-old.downloaded
			}
			if !old.seeder && seeder {
				completedDelta = 1
			}
			q.sentCompleted = q.sentCompleted || req.Event == bittorrent.Completed
		}
		q.setAddr(req.Addr, req.DualStacked)
		q.seeder, q.active, q.visible, q.connectable = seeder, true, visible, connectable
		q.updated, q.uploaded, q.downloaded = now, req.Uploaded, req.Downloaded
		newSeed, newLeech = seeder && inList(q), !seeder && inList(q)
		if !visible {
			warnings = append(warnings, warnSlots)
		}
	}
	seedDelta, leechDelta := b2i(newSeed)-b2i(oldSeed), b2i(newLeech)-b2i(oldLeech)
	t.seeders = satAdd(t.seeders, seedDelta)
	t.leechers = satAdd(t.leechers, leechDelta)
	t.completed = satAdd(t.completed, completedDelta)
	r.Change, r.IPv6 = t.count(oldSeed, oldLeech, newSeed, newLeech, completedDelta == 1), v6

	// The reply (§4.6, §4.7).
	r.Interval = time.Duration(rand.Int64N(int64(p.AnnounceMax.Duration/time.Second-p.AnnounceMin.Duration/time.Second)+1))*time.Second + p.AnnounceMin.Duration.Truncate(time.Second)
	r.MinInterval = p.AnnounceMin.Duration
	r.Downloaded = int(t.completed)
	seedAsked, leechAsked := false, false
	if len(warnings) == 0 && !rateLimited {
		r.Complete, r.Incomplete = int(t.seeders), int(t.leechers)
		if !stopped && t.leechers > 0 {
			want := req.NumWant
			if want < 0 {
				want = p.NumwantDefault
			}
			want = min(want, p.NumwantMax)
			added := 0
			if req.Left > 0 && t.seeders > 0 && want > 0 {
				seedAsked = true
				if u.seedList.under() {
					added = c.pick(r, t, u.id, true, want, req.Addr.Addr().Is6(), now)
				} else {
					r.Complete = 0
				}
			}
			if t.leechers > 0 && added < want {
				leechAsked = true
				if u.leechList.under() {
					c.pick(r, t, u.id, false, want-added, req.Addr.Addr().Is6(), now)
				} else {
					r.Incomplete = 0
				}
			}
		}
	}
	r.Warning = strings.Join(warnings, "; ")

	// The user's counters and limiters, then the rows (§4.8).
	u.seeding = satAdd(u.seeding, seedDelta)
	u.leeching = satAdd(u.leeching, leechDelta)
	if seedAsked {
		u.seedList.tick(now)
	}
	if leechAsked {
		u.leechList.tick(now)
	}
	upF, downF, immune := c.factors(t, g, u)
	credUp, credDown := credit(upF, upDelta), credit(downF, downDelta)
	at := now.UTC()
	completedAt := time.Time{}
	if req.Event == bittorrent.Completed {
		completedAt = at
	}
	c.q.Add(func(b *batch) {
		b.addPeer(peerRowKey{u.id, t.id, req.PeerID}, peerRow{
			addr: req.Addr, agent: req.UserAgent,
			uploaded: req.Uploaded, downloaded: req.Downloaded, left: req.Left,
			active: !stopped, seeder: seeder, visible: !stopped && visible, connects: connectable,
			created: at, updated: at,
		})
		b.addHistory(histKey{u.id, t.id}, histRow{
			agent:    req.UserAgent,
			uploaded: credUp, actualUp: upDelta, clientUp: req.Uploaded,
			downloaded: credDown, actualDown: downDelta, clientDown: req.Downloaded,
			seeder: seeder, active: !stopped || activeAfterStop, immune: immune,
			created: at, updated: at, completed: completedAt,
		})
		if credUp != 0 || credDown != 0 {
			b.addUser(u.id, userRow{credUp, credDown})
		}
		if seedDelta != 0 || leechDelta != 0 || completedDelta != 0 || upDelta != 0 || downDelta != 0 {
			b.addTorrent(t.id, torRow{
				seeders: int64(seedDelta), leechers: int64(leechDelta), completed: int64(completedDelta),
				balance: toI64(upDelta) - toI64(downDelta),
			})
		}
		if p.AnnounceLogging {
			want := req.NumWant
			if want < 0 {
				want = p.NumwantDefault
			}
			if stopped {
				want = 0
			}
			b.announces = append(b.announces, annRow{
				uid: u.id, tid: t.id, uploaded: req.Uploaded, downloaded: req.Downloaded, left: req.Left,
				corrupt: req.Corrupt, peerID: req.PeerID, port: req.Addr.Port(), numwant: min(want, p.NumwantMax),
				created: at, event: eventName(req.Event), key: req.Key,
			})
		}
	})
	c.rates.response(now)
}

// pick appends up to n random peers of t's seeders (or leechers) that are
// in the peer list and not the user's own to r, each once: a dual-stacked
// peer by its address of the announcer's family (v6). s.mu is held.
func (c *Conn) pick(r *backend.AnnounceReply, t *torrent, uid uint32, seeders bool, n int, v6 bool, now time.Time) int {
	cands := c.cands[:0]
	for k, q := range t.peers {
		if k.uid != uid && q.seeder == seeders && c.inList(q) {
			cands = append(cands, q)
		}
	}
	added := 0
	for i := 0; i < len(cands) && added < n; i++ {
		j := i + rand.IntN(len(cands)-i)
		cands[i], cands[j] = cands[j], cands[i]
		a := cands[i].addrFor(v6, now, c.p.ActivePeerTTL.Duration)
		if a.Addr().Is4() {
			r.Peers4 = append(r.Peers4, a.Addr().AsSlice()...)
			r.Peers4 = append(r.Peers4, byte(a.Port()>>8), byte(a.Port()))
		} else {
			r.Peers6 = append(r.Peers6, a.Addr().AsSlice()...)
			r.Peers6 = append(r.Peers6, byte(a.Port()>>8), byte(a.Port()))
		}
		added++
	}
	clear(cands)
	c.cands = cands[:0]
	return added
}

// inList is UNIT3D-Announce's in_peer_list (§4.5): the peers listed and
// counted as seeders or leechers.
func (c *Conn) inList(q *peer) bool {
	return q.active && q.visible && (q.connectable || !c.p.RequirePeerConnectivity)
}

// count moves t's listed peers by one peer's change of list membership
// (old and new: as a seeder or a leecher) and returns the change for the
// statistics: a peer joins or leaves the swarm as it enters or leaves the
// peer list, and the swarm exists while it lists a peer.
func (t *torrent) count(oldSeed, oldLeech, newSeed, newLeech, snatched bool) bittorrent.Change {
	var ch bittorrent.Change
	oldIn, newIn := oldSeed || oldLeech, newSeed || newLeech
	switch {
	case !oldIn && newIn:
		ch |= bittorrent.PeerAdded
		if t.listed == 0 {
			ch |= bittorrent.SwarmAdded
		}
		t.listed++
	case oldIn && !newIn:
		ch |= bittorrent.PeerRemoved
		t.listed--
		if t.listed == 0 {
			ch |= bittorrent.SwarmRemoved
		}
	}
	if oldSeed {
		ch |= bittorrent.SeederBefore
	}
	if newSeed {
		ch |= bittorrent.SeederAfter
	}
	if snatched {
		ch |= bittorrent.Snatched
	}
	return ch
}

// factors are the upload and download factors (percent) and the history
// immunity of an announce (§5).
func (c *Conn) factors(t *torrent, g *group, u *user) (up, down uint8, immune bool) {
	p := &c.p
	up = max(p.UploadFactor, g.upFactor, t.upFactor)
	down = min(p.DownloadFactor, g.downFactor, t.downFactor)
	immune = g.immune
	upO, downO, immO := (*uint8)(nil), (*uint8)(nil), (*bool)(nil)
	switch {
	case u.lifetime:
		upO, downO, immO = p.LifetimeDonorUploadFactorOverride, p.LifetimeDonorDownloadFactorOverride, p.LifetimeDonorImmunityOverride
	case u.donor:
		upO, downO, immO = p.DonorUploadFactorOverride, p.DonorDownloadFactorOverride, p.DonorImmunityOverride
	}
	if upO != nil {
		up = max(up, *upO)
	}
	if downO != nil {
		down = min(down, *downO)
	}
	if immO != nil {
		immune = *immO
	}
	s := c.st
	_, personal := s.personal[u.id]
	_, token := s.tokens[tokenKey{u.id, t.id}]
	_, featured := s.featured[t.id]
	if personal || token || featured {
		down = 0
	}
	if featured {
		up = 200
	}
	return up, down, immune
}

// credit is floor(factor × delta / 100), saturating.
func credit(factor uint8, delta uint64) uint64 {
	hi, lo := bits.Mul64(uint64(factor), delta)
	if hi >= 100 {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, 100)
	return q
}

func satSub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func toI64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// eventName is the announces table's event: paused and empty are "".
func eventName(e bittorrent.Event) string {
	switch e {
	case bittorrent.Started, bittorrent.Stopped, bittorrent.Completed:
		return e.String()
	}
	return ""
}
