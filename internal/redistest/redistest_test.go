package redistest

import (
	"strings"
	"testing"
)

func TestStopRestartPause(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("server listens on %s, want 127.0.0.1 only", s.Addr)
	}
	if _, err := s.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Do("GET", "k"); err != nil || got != "$1\nv" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("a paused server answered")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do("PING"); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("a stopped server answered")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Do("EXISTS", "k"); got != ":0" {
		t.Errorf("after restart EXISTS k = %q, want :0 (persistence is off)", got)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t)
	if len(c.Addrs()) != 3 {
		t.Fatalf("%d nodes", len(c.Addrs()))
	}
	n := c.Nodes[1]
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitOK(30e9); err != nil {
		t.Fatal(err)
	}
}

func TestMissingBinariesSkipOutsideCI(t *testing.T) {
	saved := serverPaths
	serverPaths = []string{"/nonexistent/redis-server"}
	t.Cleanup(func() { serverPaths = saved })
	t.Setenv("PATH", t.TempDir())
	if _, err := start(t.TempDir(), nil); err != ErrNotInstalled {
		t.Fatalf("start without binaries: %v", err)
	}
	t.Setenv("CI", "")
	var skipped bool
	t.Run("start", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Start(t)
	})
	if !skipped {
		t.Error("a missing server did not skip outside CI")
	}
}
