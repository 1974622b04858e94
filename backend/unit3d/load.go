package unit3d

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/golang/glog"
)

// This file is the start-up loads of unit3d.md §3, in their order, and
// Reload, which re-reads the lists the site's API leaves stale.

// resyncTorrents is step 0: undeleted torrents' seeders and leechers
// counted again from peers (connectable too, if so required).
func resyncTorrents(requireConnectable bool) string {
	cond := "active AND visible"
	if requireConnectable {
		cond += " AND connectable"
	}
	return "UPDATE torrents LEFT JOIN (SELECT torrent_id, SUM(`left` = 0) AS s, SUM(`left` > 0) AS l FROM peers WHERE " + cond +
		" GROUP BY torrent_id) AS agg ON agg.torrent_id = torrents.id" +
		" SET torrents.seeders = COALESCE(agg.s, 0), torrents.leechers = COALESCE(agg.l, 0) WHERE torrents.deleted_at IS NULL"
}

// One torrent per info_hash: the lowest undeleted approved id, else the
// lowest undeleted one, else the lowest deleted one.
const torrentsQuery = "SELECT id, info_hash, status, seeders, leechers, times_completed, 100 - LEAST(GREATEST(free, 0), 100)," +
	" IF(doubleup, 200, 100), deleted_at IS NOT NULL FROM torrents" +
	" ORDER BY info_hash, deleted_at IS NOT NULL, IF(deleted_at IS NULL, status <> 1, 0), id"

const peersQuery = "SELECT INET6_NTOA(ip), user_id, torrent_id, port, seeder, active, visible, connectable, updated_at," +
	" uploaded, downloaded, peer_id FROM peers"

const usersQuery = "SELECT users.id, users.group_id, users.passkey, users.can_download, users.is_donor, users.is_lifetime," +
	" COALESCE(agg.s, 0), COALESCE(agg.l, 0) FROM users LEFT JOIN (SELECT user_id," +
	" SUM(seeder = 1 AND active = 1 AND visible = 1) AS s, SUM(seeder = 0 AND active = 1 AND visible = 1) AS l" +
	" FROM peers GROUP BY user_id) AS agg ON agg.user_id = users.id WHERE users.deleted_at IS NULL"

const groupsQuery = "SELECT id, slug, download_slots, is_immune, IF(is_freeleech, 0, 100), IF(is_double_upload, 200, 100) FROM `groups`"

// load runs the start-up loads into a fresh state.
func (c *Conn) load(ctx context.Context) error {
	if _, err := c.db.ExecContext(ctx, resyncTorrents(c.p.RequirePeerConnectivity)); err != nil {
		return fmt.Errorf("resynchronising torrents' seeders and leechers: %w", err)
	}
	s := newState()
	if err := c.loadAgentsInto(ctx, s); err != nil {
		return err
	}
	if err := loadTorrents(ctx, c.db, s); err != nil {
		return err
	}
	np, err := loadPeers(ctx, c.db, s, c.inList)
	if err != nil {
		return err
	}
	now := time.Now()
	err = each(ctx, c.db, usersQuery, func(rows *sql.Rows) error {
		u := &user{}
		if err := rows.Scan(&u.id, &u.group, &u.passkey, &u.canDownload, &u.donor, &u.lifetime, &u.seeding, &u.leeching); err != nil {
			return err
		}
		if len(u.passkey) < bittorrent.PasskeyLen {
			glog.Warningf("unit3d backend: user %d skipped: passkey of %d characters", u.id, len(u.passkey))
			return nil
		}
		u.passkey = u.passkey[:bittorrent.PasskeyLen]
		u.seedList, u.leechList = newLimiter(c.p.seedRates, now), newLimiter(c.p.leechRates, now)
		s.users[u.id] = u
		s.passkeys[u.passkey] = u.id
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading users: %w", err)
	}
	if c.p.ConnectivityCheck {
		err = each(ctx, c.db, "SELECT INET6_NTOA(ip), port, COALESCE(MAX(connectable), 0), MAX(updated_at) FROM peers GROUP BY ip, port", func(rows *sql.Rows) error {
			var ip sql.NullString
			var port uint16
			var ok bool
			var at sql.NullTime
			if err := rows.Scan(&ip, &port, &ok, &at); err != nil {
				return err
			}
			if a, err := netip.ParseAddr(ip.String); err == nil && at.Valid {
				s.reachable[netip.AddrPortFrom(a.Unmap(), port)] = reach{ok: ok, at: at.Time}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("loading the connectivity cache: %w", err)
		}
	}
	if err := loadLists(ctx, c.db, s); err != nil {
		return err
	}
	c.st.mu.Lock()
	c.st.torrents, c.st.hashes, c.st.users, c.st.passkeys = s.torrents, s.hashes, s.users, s.passkeys
	c.st.groups, c.st.dbAgents, c.st.tokens, c.st.personal, c.st.featured = s.groups, s.dbAgents, s.tokens, s.personal, s.featured
	c.st.reachable = s.reachable
	c.st.mu.Unlock()
	glog.Infof("unit3d backend: %d torrents with %d peers, %d users, %d groups, %d blacklisted prefixes",
		len(s.torrents), np, len(s.users), len(s.groups), len(s.dbAgents))
	return nil
}

func loadTorrents(ctx context.Context, db *sql.DB, s *state) error {
	err := each(ctx, db, torrentsQuery, func(rows *sql.Rows) error {
		t := &torrent{peers: map[peerKey]*peer{}}
		var hash []byte
		var status int
		var seeders, leechers, completed int64
		if err := rows.Scan(&t.id, &hash, &status, &seeders, &leechers, &completed, &t.downFactor, &t.upFactor, &t.deleted); err != nil {
			return err
		}
		var h bittorrent.InfoHash
		if len(hash) != len(h) {
			return nil
		}
		copy(h[:], hash)
		if _, dup := s.hashes[h]; dup {
			return nil // a later row of a hash already chosen
		}
		t.status = statusUnknown
		if status >= statusPending && status <= statusPostponed {
			t.status = int16(status)
		}
		t.seeders, t.leechers, t.completed = clampU32(seeders), clampU32(leechers), clampU32(completed)
		s.torrents[t.id] = t
		s.hashes[h] = t.id
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading torrents: %w", err)
	}
	return nil
}

func loadPeers(ctx context.Context, db *sql.DB, s *state, inList func(*peer) bool) (int, error) {
	n := 0
	err := each(ctx, db, peersQuery, func(rows *sql.Rows) error {
		p := &peer{}
		var ip sql.NullString
		var uid, tid uint32
		var port uint16
		var at sql.NullTime
		var id []byte
		if err := rows.Scan(&ip, &uid, &tid, &port, &p.seeder, &p.active, &p.visible, &p.connectable, &at, &p.uploaded, &p.downloaded, &id); err != nil {
			return err
		}
		t := s.torrents[tid]
		a, err := netip.ParseAddr(ip.String)
		if t == nil || err != nil || !at.Valid || len(id) != bittorrent.PeerIDSize {
			return nil // skipped, where UNIT3D-Announce would not start
		}
		p.addr, p.updated = netip.AddrPortFrom(a.Unmap(), port), at.Time
		p.v6 = p.addr.Addr().Is6()
		t.peers[peerKey{uid, bittorrent.PeerID(id)}] = p // one row per key: the primary key
		if inList(p) {
			t.listed++
		}
		n++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("loading peers: %w", err)
	}
	return n, nil
}

// loadLists reads groups and the freeleech lists (steps 8 to 11).
func loadLists(ctx context.Context, db *sql.DB, s *state) error {
	err := each(ctx, db, "SELECT user_id, torrent_id FROM freeleech_tokens", func(rows *sql.Rows) error {
		var k tokenKey
		if err := rows.Scan(&k.uid, &k.tid); err != nil {
			return err
		}
		s.tokens[k] = struct{}{}
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading freeleech_tokens: %w", err)
	}
	if err := loadIDs(ctx, db, "personal_freeleeches", "user_id", s.personal); err != nil {
		return err
	}
	if err := loadIDs(ctx, db, "featured_torrents", "torrent_id", s.featured); err != nil {
		return err
	}
	err = each(ctx, db, groupsQuery, func(rows *sql.Rows) error {
		g := &group{}
		var slots sql.NullInt64
		if err := rows.Scan(&g.id, &g.slug, &slots, &g.immune, &g.downFactor, &g.upFactor); err != nil {
			return err
		}
		g.slots = -1
		if slots.Valid {
			g.slots = max(slots.Int64, 0)
		}
		s.groups[g.id] = g
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading groups: %w", err)
	}
	return nil
}

func (c *Conn) loadAgentsInto(ctx context.Context, s *state) error {
	return each(ctx, c.db, "SELECT peer_id_prefix FROM blacklist_clients", func(rows *sql.Rows) error {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			return err
		}
		s.dbAgents[string(p)] = struct{}{}
		return nil
	})
}

// loadAgents reads blacklist_clients' prefixes again.
func (c *Conn) loadAgents(ctx context.Context) error {
	s := newState()
	if err := c.loadAgentsInto(ctx, s); err != nil {
		return err
	}
	c.st.mu.Lock()
	c.st.dbAgents = s.dbAgents
	c.st.mu.Unlock()
	return nil
}

// Reload re-reads what the site's API may have left stale: the client
// blacklist, groups, freeleech tokens, personal freeleech, featured
// torrents, and the status and factors of the torrents in memory (UNIT3D's
// torrent edit form changes torrents.free without telling the tracker).
// Swarms, users and counters are untouched. The daemon calls it on
// SIGUSR1; the site's POST config/reload too.
func (c *Conn) Reload(ctx context.Context) error {
	s := newState()
	if err := c.loadAgentsInto(ctx, s); err != nil {
		return fmt.Errorf("loading blacklist_clients: %w", err)
	}
	if err := loadLists(ctx, c.db, s); err != nil {
		return err
	}
	if err := loadTorrents(ctx, c.db, s); err != nil {
		return err
	}
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	c.st.groups, c.st.dbAgents, c.st.tokens, c.st.personal, c.st.featured = s.groups, s.dbAgents, s.tokens, s.personal, s.featured
	for id, fresh := range s.torrents {
		if t := c.st.torrents[id]; t != nil {
			t.status, t.downFactor, t.upFactor = fresh.status, fresh.downFactor, fresh.upFactor
		}
	}
	return nil
}

// each runs q and calls f for every row.
// loadIDs adds the IDs in column of every row of table to set.
func loadIDs(ctx context.Context, db *sql.DB, table, column string, set map[uint32]struct{}) error {
	err := each(ctx, db, "SELECT "+column+" FROM "+table, func(rows *sql.Rows) error {
		var id uint32
		if err := rows.Scan(&id); err != nil {
			return err
		}
		set[id] = struct{}{}
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading %s: %w", table, err)
	}
	return nil
}

func each(ctx context.Context, db *sql.DB, q string, f func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func clampU32(v int64) uint32 { return uint32(min(max(v, 0), 1<<32-1)) }
