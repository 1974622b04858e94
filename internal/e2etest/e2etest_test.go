package e2etest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestCond(t *testing.T) {
	c := Counts{Complete: 2, Downloaded: 1, Incomplete: 0}
	for _, tc := range []struct {
		cond    Cond
		want    bool
		wantErr bool
	}{
		{"complete==2", true, false},
		{"complete==1", false, false},
		{"downloaded>=1", true, false},
		{"downloaded>1", false, false},
		{"incomplete<=0", true, false},
		{"incomplete<0", false, false},
		{" complete == 2 ", true, false},
		{"seeders==2", false, true},
		{"complete=2", false, true},
		{"complete==two", false, true},
	} {
		got, err := tc.cond.holds(c)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%q: got %v, %v; want %v, error %v", tc.cond, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestDecodeIsStrict(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{"d8:completei1e10:incompletei0ee", true},
		{"d14:failure reason3:badee", false},                        // trailing bytes
		{"d10:incompletei0e8:completei1ee", false},                  // keys unsorted
		{"d8:completei01ee", false},                                 // non-canonical integer
		{"d8:completei1e8:completei1ee", false},                     // repeated key
		{"li1ee", false},                                            // not a dictionary
		{"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1eeee", true}, // scrape-like
	} {
		_, err := decode(tc.body)
		if (err == nil) != tc.ok {
			t.Errorf("decode(%q): %v, want ok %v", tc.body, err, tc.ok)
		}
	}
}

func TestGetRefusesOtherHosts(t *testing.T) {
	for _, u := range []string{"http://localhost:1/x", "http://10.0.0.1/x", "http://[::1]:1/x", "http://example.com/"} {
		if _, err := Get(u); err == nil || !strings.Contains(err.Error(), "non-loopback") {
			t.Errorf("Get(%q): %v, want a refusal", u, err)
		}
	}
}

// log is a tracker log as the daemon writes it at -v=3.
const log = `I1201 15:00:00.000001  1 chihaya.go:196] serving announces on 127.0.0.1:40001
I1201 15:00:00.000002  1 chihaya.go:220] serving UDP announces on 127.0.0.1:40003 (2 sockets)
I1201 15:00:00.000003  1 chihaya.go:205] serving admin on 127.0.0.1:40002
I1201 15:00:01.000000  1 http.go:187] GET /announce?info_hash=%AA&port=6881&event=started&left=0 from 127.0.0.1:5000: <nil>
I1201 15:00:02.000000  1 http.go:187] GET /scrape?info_hash=%AA from 127.0.0.1:5001: <nil>
I1201 15:00:03.000000  1 http.go:187] GET /abc/announce?info_hash=%AA&event=completed&port=6882 from 127.0.0.1:5002: <nil>
I1201 15:00:04.000000  1 http.go:187] GET /bad/announce?info_hash=%AA&port=6999&event=started from 127.0.0.1:5003: Passkey not found
I1201 15:00:05.000000  1 http.go:187] GET /announce?info_hash=%AA&port=68810&event=stopped from 127.0.0.1:5004: <nil>
I1201 15:00:06.000000  1 protocol.go:166] udp: action 0 from 127.0.0.1:5005: <nil>
I1201 15:00:07.000000  1 protocol.go:166] udp: action 1 from 127.0.0.1:5005: bad connection ID
`

func writeLog(t *testing.T, s string) *Tracker {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tracker.log")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Tracker{Log: p}
}

func TestTrackerLog(t *testing.T) {
	tr := writeLog(t, log)
	if pub, adm, udp := tr.listeners(); pub != "127.0.0.1:40001" || adm != "127.0.0.1:40002" || udp != "127.0.0.1:40003" {
		t.Errorf("listeners: %q, %q, %q", pub, adm, udp)
	}
	rs := Requests(tr.Log)
	if len(rs) != 7 || rs[5].Target != "action 0" || rs[6].Err != "bad connection ID" || rs[1].Target != "/scrape?info_hash=%AA" || rs[1].From != "127.0.0.1:5001" || rs[3].Err != "Passkey not found" {
		t.Fatalf("requests: %+v", rs)
	}
	for _, tc := range []struct {
		port  int
		event string
		want  bool
	}{
		{6881, "started", true},
		{6882, "completed", true}, // at /<passkey>/announce
		{6881, "stopped", false},  // port 68810 is another port
		{68810, "stopped", true},
		{6882, "started", false},
	} {
		if got := tr.SawAnnounce(tc.port, tc.event); got != tc.want {
			t.Errorf("SawAnnounce(%d, %s) = %v", tc.port, tc.event, got)
		}
	}

	bad, n := tr.Problems(nil)
	if n != 7 || len(bad) != 2 || !strings.Contains(bad[0], "Passkey not found") || !strings.Contains(bad[1], "bad connection ID") {
		t.Errorf("Problems(nil): %q, %d", bad, n)
	}
	if bad, _ := tr.Problems(regexp.MustCompile(`GET /bad/announce\?.*: Passkey not found$|udp: action 1 .*: bad connection ID$`)); len(bad) != 0 {
		t.Errorf("an expected failure is reported: %q", bad)
	}
	tr = writeLog(t, log+"E1201 15:00:06.000000  1 mysql.go:10] flush failed\npanic: boom\n")
	if bad, _ := tr.Problems(regexp.MustCompile(`Passkey not found|bad connection ID`)); len(bad) != 2 {
		t.Errorf("error and panic lines: %q", bad)
	}
}

func TestMissing(t *testing.T) {
	got := missing([]Tool{{"sh", "dash"}, {"no-such-tool-e2e-1", "pkg-a"}, {"no-such-tool-e2e-2", "pkg-a"}, {"no-such-tool-e2e-3", "pkg-b"}, {"/no/such/dir/lib*.so", "pkg-c"}, {"/bin/s*", "pkg-d"}})
	if !slices.Equal(got, []string{"pkg-a", "pkg-b", "pkg-c"}) {
		t.Errorf("missing: %q", got)
	}
}

func TestTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "client.log")
	os.WriteFile(p, []byte("one\r\nProgress: 10%\rProgress: 20%\rtwo\n\nthree\n"), 0o644)
	if got := Tail(p, 2); got != "---- tail of "+p+"\ntwo\nthree" {
		t.Errorf("Tail: %q", got)
	}
}
