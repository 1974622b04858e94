//go:build e2e

// Package e2e is the end-to-end suite: real BitTorrent clients (aria2 and
// transmission-cli) share a random file through the freshly built tracker
// daemon, and the tracker's scrape must show the swarm as it really is. A
// last case runs the tracker in private mode for a Gazelle site held by a
// throw-away MariaDB: passkey URLs, the site's updates, and the credit and
// snatch rows the transfer must leave in the database.
//
// Run it with `make e2e` (go test -tags e2e -count=1 -v ./e2e/...). Each
// check is a subtest; the run ends with a line "e2e: N passed, M failed".
// Everything stays on 127.0.0.1, and every process is stopped by its PID
// (see internal/e2etest). Missing tools are installed with apt-get as root
// on Debian; otherwise the suite fails and names the packages: it never
// skips, with or without CI=true.
//
// The work directory (client and tracker logs) is kept after a failure, or
// always with E2E_KEEP=1.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/internal/e2etest"
)

const (
	// expiryWait is how long a swarm may take to empty once its clients
	// are gone without a word: the peer lifetime, a reaper pass, and slack.
	expiryWait = 20 * time.Second
	// transferWait is how long a leecher may take to end with the file.
	transferWait = 75 * time.Second
	// clientDeadline is the most any client runs (then it is stopped, as
	// `timeout` would stop it).
	clientDeadline = 150 * time.Second
)

var (
	work  string    // the run's work directory
	start time.Time // when the run started, for progress notes

	passed, failed atomic.Int64 // checks
)

func TestMain(m *testing.M) {
	start = time.Now()
	var err error
	if work, err = os.MkdirTemp("", "chihaya-e2e-"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	fmt.Printf("e2e: %d passed, %d failed (%s)\n", passed.Load(), failed.Load(), time.Since(start).Round(time.Second))
	if code != 0 || failed.Load() > 0 || os.Getenv("E2E_KEEP") == "1" {
		fmt.Println("work directory kept:", work)
	} else {
		os.RemoveAll(work)
	}
	os.Exit(code)
}

// check runs one of the suite's checks as a subtest of t, and counts it.
func check(t *testing.T, name string, f func(t *testing.T)) bool {
	t.Helper()
	ok := t.Run(name, f)
	if ok {
		passed.Add(1)
	} else {
		failed.Add(1)
	}
	return ok
}

// since is the run's elapsed time, for notes.
func since() time.Duration { return time.Since(start).Round(time.Second) }

var built struct {
	once sync.Once
	bin  string
	err  error
}

// trackerBinary builds the daemon, once per run.
func trackerBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() { built.bin, built.err = e2etest.Build(work) })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

func TestE2E(t *testing.T) {
	e2etest.Require(t, e2etest.Tools...)
	check(t, "build: go build ./cmd/chihaya", func(t *testing.T) { trackerBinary(t) })
	t.Run("public", testPublic)
	for _, c := range privateCases {
		t.Run(c.name, func(t *testing.T) { testPrivate(t, c) })
	}
	check(t, "loopback only: the tracker saw only 127.0.0.1, aria2 connected only to 127.0.0.1 (and no client log names another address)", checkLoopbackOnly)
}

// A urlForm is a form of the tracker's announce URL that a torrent names.
// A new form (another path, or another protocol the daemon serves) is a
// new value here and new rows in publicCases and privateCases.
type urlForm struct {
	// url is the announce URL; passkey is "" on a public tracker.
	url func(tr *e2etest.Tracker, passkey string) string
	// udp is set for udp:// URLs. The tracker logs no event for a UDP
	// announce, so the cases check a client's events by their effect on
	// the scrape alone; and aria2 1.36 announces to UDP trackers only with
	// DHT on (it shares the DHT's socket), which it gets, bound to
	// 127.0.0.1 and with no node to talk to.
	udp bool
	// unknownPasskey matches the tracker's log line for the deliberate
	// announce with the unknown passkey, the one failure a private case
	// asks for.
	unknownPasskey func(passkey string) *regexp.Regexp
}

var (
	// httpURL is http://127.0.0.1:PORT/announce, or /<passkey>/announce.
	httpURL = urlForm{
		url: (*e2etest.Tracker).AnnounceURL,
		unknownPasskey: func(pk string) *regexp.Regexp {
			return regexp.MustCompile(`GET /` + pk + `/announce\?.*: Passkey not found$`)
		},
	}
	// udpURL is udp://127.0.0.1:PORT/announce, or /<passkey>/announce
	// (which a client sends as BEP 41 URL data).
	udpURL = urlForm{
		url: (*e2etest.Tracker).UDPAnnounceURL,
		udp: true,
		unknownPasskey: func(string) *regexp.Regexp {
			return regexp.MustCompile(`\] udp: action 1 from \S+: Passkey not found$`)
		},
	}
)

// publicCases run one after the other against one public tracker. The
// clients' roles and their ways of leaving the swarm are in run; the
// torrent announces to form's URL alone.
var publicCases = []struct {
	name string
	run  func(t *testing.T, s *swarm)
	form urlForm
}{
	{"aria2->transmission", aria2SeedsTransmissionLeeches, httpURL},
	{"transmission->aria2", transmissionSeedsAria2Leeches, httpURL},
	{"aria2->transmission over udp", aria2SeedsTransmissionLeeches, udpURL},
	{"transmission->aria2 over udp", transmissionSeedsAria2Leeches, udpURL},
}

func testPublic(t *testing.T) {
	tr := e2etest.StartTracker(t, trackerBinary(t), filepath.Join(work, "public"), nil)
	t.Logf("[%v] tracker pid %d on %s (admin %s)", since(), tr.PID(), tr.Addr, tr.Admin)
	for i, c := range publicCases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(work, "public", fmt.Sprintf("case%d", i+1))
			s := &swarm{tr: tr, dir: dir, scrape: tr.ScrapeURL(""), form: c.form}
			s.needUDP(t)
			s.files(t)
			var err error
			if s.hash, err = e2etest.MakeTorrent(s.payloadPath, filepath.Join(dir, "test.torrent"), c.form.url(tr, "")); err != nil {
				t.Fatal(err)
			}
			t.Logf("[%v] %d bytes, info_hash %s, seeder port %d, leecher port %d",
				since(), len(s.payload), s.hash, s.seedPort, s.leechPort)
			c.run(t, s)
		})
	}
	stopTracker(t, tr, nil)
}

// stopTracker checks that the tracker shuts down cleanly on SIGTERM and
// that it answered every request without a failure, except those whose log
// line matches expected (failures a case asked for).
func stopTracker(t *testing.T, tr *e2etest.Tracker, expected *regexp.Regexp) {
	t.Helper()
	check(t, "tracker shuts down cleanly on SIGTERM", func(t *testing.T) {
		if err := tr.Stop(); err != nil {
			t.Fatalf("%v\n%s", err, e2etest.Tail(tr.Log, 10))
		}
	})
	check(t, "tracker answered all requests without an error", func(t *testing.T) {
		bad, n := tr.Problems(expected)
		if n == 0 {
			t.Fatalf("the log %s shows no request at all", tr.Log)
		}
		if len(bad) > 0 {
			t.Fatalf("%d of %d requests (or log lines) went wrong:\n%s", len(bad), n, strings.Join(bad[:min(len(bad), 10)], "\n"))
		}
		t.Logf("%d requests", n)
	})
}

// swarm is one case's torrent, payload and clients.
type swarm struct {
	tr          *e2etest.Tracker
	dir         string
	scrape      string  // the scrape URL (as the seeder's user, in private mode)
	form        urlForm // of the URLs the torrents announce to
	payloadPath string  // dir/seed/payload.bin
	payload     []byte
	hash        string // info_hash, hex

	seedPort, leechPort int
	seeder, leecher     *e2etest.Client
}

// needUDP fails t when the swarm's torrents announce over UDP and the
// tracker serves none.
func (s *swarm) needUDP(t *testing.T) {
	t.Helper()
	if s.form.udp && s.tr.UDP == "" {
		t.Fatalf("the tracker serves no UDP (no \"serving UDP announces on\" in %s)", s.tr.Log)
	}
}

// files makes the payload and picks the clients' ports.
func (s *swarm) files(t *testing.T) {
	t.Helper()
	var err error
	if s.payloadPath, s.payload, err = e2etest.MakePayload(filepath.Join(s.dir, "seed")); err != nil {
		t.Fatal(err)
	}
	s.seedPort, s.leechPort = e2etest.FreePort(t), e2etest.FreePort(t)
	for s.leechPort == s.seedPort {
		s.leechPort = e2etest.FreePort(t)
	}
}

// expectScrape polls the scrape until conds hold, and fails t otherwise.
func (s *swarm) expectScrape(t *testing.T, within time.Duration, conds ...e2etest.Cond) {
	t.Helper()
	c, err := e2etest.WaitScrape(s.scrape, s.hash, within, conds...)
	if err != nil {
		t.Fatalf("%v\n%s", err, s.logs())
	}
	t.Log(c)
}

// logs are the ends of the clients' logs, for a failed check.
func (s *swarm) logs() string {
	var out []string
	for _, c := range []*e2etest.Client{s.seeder, s.leecher} {
		if c != nil {
			out = append(out, e2etest.Tail(c.Log, 25))
		}
	}
	return strings.Join(out, "\n")
}

// path is a file in the case's directory.
func (s *swarm) path(name string) string { return filepath.Join(s.dir, name) }

// share is the transfer every case makes: the seeder seeds seedTorrent
// from dir/seed, then the leecher leeches leechTorrent (the same torrent,
// or the leecher's own copy with its passkey) into dir/leech and must end
// with a byte-identical file, and the scrape must then show two seeders
// and a download. It reports whether the case can go on.
func (s *swarm) share(t *testing.T, seeder, leecher clientKind, seedTorrent, leechTorrent string) bool {
	t.Helper()
	s.seeder = seeder.run(t, s, "seed", seedTorrent, s.seedPort)
	if !check(t, "seeder registered ("+seeder.short+", left=0)", func(t *testing.T) {
		s.expectScrape(t, 20*time.Second, "complete==1", "incomplete==0")
	}) {
		t.Log(e2etest.Tail(s.tr.Log, 25))
		return false
	}

	s.leecher = leecher.run(t, s, "leech", leechTorrent, s.leechPort)
	if !check(t, leecher.name+" downloaded a byte-identical file", func(t *testing.T) {
		if !e2etest.WaitIdentical(s.payload, s.path("leech/payload.bin"), transferWait, s.leecher) {
			t.Fatalf("no byte-identical payload.bin within %v\n%s", transferWait, s.logs())
		}
		t.Logf("[%v] done", since())
	}) {
		return false
	}

	// A leecher announces `completed` at its next announce (about 2 s).
	check(t, "scrape after the transfer: 2 seeders, downloaded>=1", func(t *testing.T) {
		s.expectScrape(t, 10*time.Second, "complete==2", "incomplete==0", "downloaded>=1")
	})
	return true
}

// sawEvent reports whether the client listening on port sent event, when
// the tracker's log can tell (HTTP); over UDP it reports true.
func (s *swarm) sawEvent(port int, event string) bool {
	return s.form.udp || s.tr.SawAnnounce(port, event)
}

// aria2SeedsTransmissionLeeches: aria2 seeds, transmission-cli leeches.
// Afterwards the seeder sends `stopped` (SIGINT, a graceful aria2
// shutdown) and the leecher, by then a seeder too, vanishes (kill -9): the
// swarm must empty by stopped and by expiry.
func aria2SeedsTransmissionLeeches(t *testing.T, s *swarm) {
	torrent := s.path("test.torrent")
	if !s.share(t, aria2.with("--seed-time=3"), transmission, torrent, torrent) {
		return
	}
	check(t, "aria2's stopped removes it at once", func(t *testing.T) {
		if e := s.seeder.Stop(syscall.SIGINT); !aria2.endedOnSIGINT(e) {
			t.Errorf("aria2 seeder exits 0 on SIGINT: %v\n%s", e, e2etest.Tail(s.seeder.Log, 25))
		}
		if !s.sawEvent(s.seedPort, "stopped") {
			t.Fatalf("aria2 sent stopped on SIGINT: no event=stopped from port %d in %s", s.seedPort, s.tr.Log)
		}
		s.expectScrape(t, 4*time.Second, "complete==1", "incomplete==0")
	})
	check(t, "vanished transmission expires; swarm empty", func(t *testing.T) {
		t.Logf("transmission-cli after kill -9: %v", s.leecher.Vanish())
		s.expectScrape(t, expiryWait, "complete==0", "incomplete==0")
	})
}

// transmissionSeedsAria2Leeches: transmission-cli seeds, aria2 leeches.
// aria2 seeds for a few seconds after its download (so that it announces
// `completed`), then ends on its own with `stopped`; transmission-cli is
// stopped with SIGINT, after which Transmission 3.00 may or may not send
// `stopped`: either way the swarm must empty, by stopped or by expiry.
func transmissionSeedsAria2Leeches(t *testing.T, s *swarm) {
	torrent := s.path("test.torrent")
	// Transmission checks the file it finds, then announces left=0 (after
	// its quirky leading `stopped`). aria2's --seed-time is in minutes:
	// 0.25 is 15 s of seeding after the download.
	if !s.share(t, transmission, aria2.with("--seed-time=0.25"), torrent, torrent) {
		return
	}
	check(t, "aria2's stopped removes it at once", func(t *testing.T) {
		if e := s.leecher.Wait(); e.Code != 0 {
			t.Errorf("aria2 ends 0 when its seed time is over: %v\n%s", e, e2etest.Tail(s.leecher.Log, 25))
		}
		completed, stopped := s.sawEvent(s.leechPort, "completed"), s.sawEvent(s.leechPort, "stopped")
		if !completed || !stopped {
			t.Fatalf("aria2 sent completed, then stopped at the end of its seed time: completed %v, stopped %v", completed, stopped)
		}
		s.expectScrape(t, 4*time.Second, "complete==1", "incomplete==0")
	})
	check(t, "stopped transmission leaves (stopped or expiry); swarm empty", func(t *testing.T) {
		if e := s.seeder.Stop(syscall.SIGINT); !transmission.endedOnSIGINT(e) {
			t.Errorf("transmission-cli ends on SIGINT: %v\n%s", e, e2etest.Tail(s.seeder.Log, 25))
		}
		s.expectScrape(t, expiryWait, "complete==0", "incomplete==0")
	})
}

var (
	connecting = regexp.MustCompile(`Connecting to (\S+)`)
	ipv4       = regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}\b`)
)

// checkLoopbackOnly: every request every tracker saw came from 127.0.0.1;
// aria2 (whose info log names each connection, and each DHT node it would
// talk to) connected to nothing else, and no client log names another
// IPv4 address (but aria2's list of the machine's own addresses).
func checkLoopbackOnly(t *testing.T) {
	var bad []string
	var requests, connections int
	filepath.WalkDir(work, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		name := d.Name()
		switch {
		case name == "tracker.log":
			for _, r := range e2etest.Requests(path) {
				requests++
				if !strings.HasPrefix(r.From, "127.0.0.1:") {
					bad = append(bad, path+": "+r.Line)
				}
			}
			return nil
		case strings.HasPrefix(name, "aria2-") && strings.HasSuffix(name, ".log.debug"),
			strings.HasPrefix(name, "libtorrent-") && strings.HasSuffix(name, ".log"):
		default:
			return nil
		}
		b, _ := os.ReadFile(path)
		for line := range strings.Lines(string(b)) {
			if m := connecting.FindStringSubmatch(line); m != nil {
				connections++
				if !strings.HasPrefix(m[1], "127.0.0.1:") {
					bad = append(bad, path+": "+m[0])
				}
			}
			if strings.Contains(line, "Found configured address") {
				continue
			}
			for _, ip := range ipv4.FindAllString(line, -1) {
				if ip != "127.0.0.1" {
					bad = append(bad, path+": "+strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if requests == 0 || connections == 0 {
		t.Fatalf("nothing to check: %d tracker requests, %d aria2 connections logged under %s", requests, connections, work)
	}
	if len(bad) > 0 {
		t.Fatalf("not loopback:\n%s", strings.Join(bad[:min(len(bad), 10)], "\n"))
	}
	t.Logf("%d tracker requests, %d aria2 connections, all on 127.0.0.1", requests, connections)
}
