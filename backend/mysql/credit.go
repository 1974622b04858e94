package mysql

import (
	"math"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// This file is Gazelle's credit rules (Ocelot's worker::announce) as one
// pure function, creditAnnounce: no database, no lock, no clock. The
// caller looks up the peer's baseline and the site's terms, and queues
// what the rules decide (record.go).

// counters are the byte counters a client reports, for its session.
type counters struct{ up, down, corrupt uint64 }

// creditTerms are what the site says of an announce's user and torrent.
type creditTerms struct {
	free    backend.FreeType
	tokened bool // the user holds a freeleech token on the torrent
	// The param multipliers; nil is 1.0 both ways.
	userMul, torMul *multipliers
}

// creditIn is one announce as the credit rules see it.
type creditIn struct {
	known   bool     // the peer has a baseline: it announced before
	prev    counters // the baseline (its previous announce), if known
	now     counters // this announce's counters
	event   bittorrent.Event
	balance int64 // the torrent's balance before the announce
	terms   creditTerms
}

// creditOut is what the credit rules decide for one announce.
type creditOut struct {
	// baseline is what the peer's next announce is credited against.
	baseline counters
	// session is set when the announce starts a session (a peer new to
	// the tracker, or "started"): nothing is credited.
	session bool
	// rawUp and rawDown are the traffic since the baseline as the client
	// counted it, 0 when the announce re-baselined.
	rawUp, rawDown int64
	// up and down are credited to the user.
	up, down int64
	// balance is the torrent's balance after the announce.
	balance int64
	// token is set when the user's freeleech token covered the announce;
	// tokenDown, the raw download (0 included), is then added to
	// users_freeleeches.Downloaded.
	token     bool
	tokenDown int64
}

// creditAnnounce applies Ocelot's credit rules to one announce:
//
//   - A peer without a baseline (new to this tracker), or "started": the
//     counters become the baseline, nothing is credited.
//   - Uploaded or downloaded below the baseline (the client restarted
//     without "started"): up and down re-baseline, corrupt keeps its
//     baseline, nothing is credited.
//   - Otherwise Δup and Δdown are the counters minus the baseline (any
//     event, "stopped" and "completed" included), and the torrent's
//     balance takes Δup − Δdown − Δcorrupt; corrupt bytes count against
//     the balance only.
//   - Neutral credits nothing; freeleech, or the user's token, credits no
//     download. A token records its raw Δdown, even 0, unless the torrent
//     is neutral (neutral takes precedence). An announce that moved
//     neither counter credits nothing and uses no token.
//   - The user's and the torrent's multipliers scale what those rules
//     left (Δup × user × torrent up, Δdown × user × torrent down),
//     rounded to the byte; the balance and the token's Downloaded stay
//     raw.
//
// Figures saturate rather than wrap: counters are unsigned 64-bit, the
// database's columns signed.
func creditAnnounce(in creditIn) creditOut {
	switch {
	case !in.known || in.event == bittorrent.Started:
		return creditOut{baseline: in.now, session: true, balance: in.balance}
	case in.now.up < in.prev.up || in.now.down < in.prev.down:
		return creditOut{
			baseline: counters{up: in.now.up, down: in.now.down, corrupt: in.prev.corrupt},
			balance:  in.balance,
		}
	}
	out := creditOut{baseline: in.now, balance: in.balance}
	if in.now.corrupt != in.prev.corrupt {
		out.balance = addSat(out.balance, -delta(in.now.corrupt, in.prev.corrupt))
	}
	dUp, dDown := delta(in.now.up, in.prev.up), delta(in.now.down, in.prev.down)
	if dUp == 0 && dDown == 0 {
		return out
	}
	out.rawUp, out.rawDown = dUp, dDown
	out.balance = addSat(out.balance, dUp-dDown)
	up, down := dUp, dDown
	switch t := in.terms; {
	case t.free == backend.Neutral:
		up, down = 0, 0
	case t.free == backend.Free || t.tokened:
		if t.tokened {
			out.token, out.tokenDown = true, dDown
		}
		down = 0
	}
	uu, ud := in.terms.userMul.factors()
	tu, td := in.terms.torMul.factors()
	out.up, out.down = scaleCredit(up, uu*tu), scaleCredit(down, ud*td)
	return out
}

// multipliers are a user's or torrent's credit multipliers (the param
// multipliers). Users and torrents without them (multipliers off, both
// 1.0, or added by add_user/add_torrent since the last load) have none:
// nil means 1.0 both ways.
type multipliers struct{ up, down float64 }

func (m *multipliers) factors() (up, down float64) {
	if m == nil {
		return 1, 1
	}
	return m.up, m.down
}

// scaleCredit is n × f rounded to the nearest byte, never negative and
// saturated at the largest int64; f == 1 keeps n exactly.
func scaleCredit(n int64, f float64) int64 {
	if f == 1 || n <= 0 {
		return max(n, 0)
	}
	if !(f > 0) {
		return 0
	}
	v := math.Round(float64(n) * f)
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// delta is now - before as a signed number, saturated: counters are
// unsigned 64-bit but the database's columns are signed.
func delta(now, before uint64) int64 {
	if now >= before {
		return int64(min(now-before, math.MaxInt64))
	}
	return -int64(min(before-now, math.MaxInt64))
}
