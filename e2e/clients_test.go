//go:build e2e

package e2e

import (
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/chihaya/chihaya/internal/e2etest"
)

// A clientKind is a BitTorrent client a case runs as its seeder or its
// leecher.
type clientKind struct {
	name  string // as the checks name it: "transmission-cli"
	short string // in "seeder registered (transmission, left=0)"
	// start runs the client in the swarm's directory: role is "seed" (it
	// seeds dir/seed on the seeder's port) or "leech" (it downloads into
	// dir/leech); its log is dir/<short>-<role>.log.
	start func(t *testing.T, s *swarm, k clientKind, role, torrent string, port int) *e2etest.Client
	// endedOnSIGINT reports whether an exit is how SIGINT ends the client.
	endedOnSIGINT func(e2etest.Exit) bool
	// sendsStopped: the client always sends `stopped` when SIGINT ends it.
	sendsStopped bool
	opts         []string // further options (aria2's)
}

// run starts the client (see start).
func (k clientKind) run(t *testing.T, s *swarm, role, torrent string, port int) *e2etest.Client {
	t.Helper()
	return k.start(t, s, k, role, torrent, port)
}

// with returns k with further options.
func (k clientKind) with(opts ...string) clientKind {
	k.opts = append(slices.Clip(k.opts), opts...)
	return k
}

func (k clientKind) log(s *swarm, role string) string {
	return s.path(k.short + "-" + role + ".log")
}

func exitedZero(e e2etest.Exit) bool { return e.Code == 0 }

var (
	// aria2: SIGINT is a graceful shutdown, with `stopped`, and exit 0.
	aria2 = clientKind{
		name: "aria2", short: "aria2", endedOnSIGINT: exitedZero, sendsStopped: true,
		start: func(t *testing.T, s *swarm, k clientKind, role, torrent string, port int) *e2etest.Client {
			var opts []string
			if role == "seed" {
				opts = append(opts, "--check-integrity=true")
			}
			if s.form.udp {
				// Later options override e2etest.Aria2's --enable-dht=false.
				// DHT's socket is the UDP trackers' too; it binds to
				// 127.0.0.1 (--interface), and with a fresh routing table
				// and no entry point it knows no node to talk to.
				opts = append(opts, "--enable-dht=true", "--dht-listen-port="+strconv.Itoa(port),
					"--dht-file-path="+s.path("aria2-"+role+".dht"))
			}
			return e2etest.Aria2(t, s.path(role), torrent, port, k.log(s, role), clientDeadline, append(opts, k.opts...)...)
		},
	}

	// transmission: transmission-cli 3.00 ends on SIGINT with 0, 130, or
	// by the signal (not SIGKILL after ignoring it), and may or may not
	// send `stopped`.
	transmission = clientKind{
		name: "transmission-cli", short: "transmission",
		endedOnSIGINT: func(e e2etest.Exit) bool {
			return e.Code == 0 || e.Code == 130 || e.Signal == syscall.SIGINT
		},
		start: func(t *testing.T, s *swarm, k clientKind, role, torrent string, port int) *e2etest.Client {
			return e2etest.Transmission(t, settings, s.path("tr-cfg-"+role), s.path(role), torrent, port, k.log(s, role), clientDeadline)
		},
	}

	// libtorrent: libtorrent_client.py, on libtorrent-rasterbar, the client
	// here that sends BEP 41 URL data (the passkey of a udp:// URL).
	libtorrent = clientKind{
		name: "libtorrent", short: "libtorrent", endedOnSIGINT: exitedZero, sendsStopped: true,
		start: func(t *testing.T, s *swarm, k clientKind, role, torrent string, port int) *e2etest.Client {
			return e2etest.Libtorrent(t, libtorrentScript, s.path(role), torrent, port, k.log(s, role), clientDeadline)
		},
	}
)

// Files of e2e/ the clients use.
var (
	settings         = abs("transmission-settings.json")
	libtorrentScript = abs("libtorrent_client.py")
)

func abs(name string) string {
	p, err := filepath.Abs(name)
	if err != nil {
		panic(err)
	}
	return p
}
