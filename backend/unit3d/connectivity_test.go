package unit3d_test

import (
	"net"
	"strings"
	"testing"
)

// The connectivity check (IS_CONNECTIVITY_CHECK_ENABLED with
// REQUIRE_PEER_CONNECTIVITY): a peer whose port takes no TCP connection
// gets warning W3 and is left out of the counts and lists; one that does
// is served. Loopback only.
func TestConnectivityCheck(t *testing.T) {
	b := newBed(t, "", `"connectivity_check": true, "require_peer_connectivity": true`)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := l.Addr().(*net.TCPAddr).Port
	closed := func() int { // a port nobody listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()

	r := parse(t, b.announce(pk(2), query(ih(1), pid(2, 1), closed, 0, 0, 0, "")))
	if r.warning != "Connectivity issue detected. Enable port-forwarding to resolve." {
		t.Errorf("unreachable peer: warning %q", r.warning)
	}
	ok(t, b.announce(pk(3), query(ih(1), pid(3, 1), open, 0, 0, 0, "")))
	_, body := b.api("GET", "torrents/1", "")
	if !strings.Contains(body, `"seeders":1,`) || !strings.Contains(body, `"is_connectable":true`) || !strings.Contains(body, `"is_connectable":false`) {
		t.Errorf("torrent 1: %s", body)
	}
	b.flush()
	if n := b.int("SELECT SUM(connectable) FROM peers"); n != 1 {
		t.Errorf("%d connectable peers rows, want 1", n)
	}
}
