package chihaya

// The daemon on the redis driver: several instances sharing swarms through
// one Redis or one Redis Cluster, and Redis trouble mid-run.

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/internal/redistest"
	_ "github.com/chihaya/chihaya/tracker/redis"
)

// redisParams returns the redis driver's parameters for the servers at
// addrs (one: a server; more: a cluster's nodes).
func redisParams(t *testing.T, addrs []string, extra string) json.RawMessage {
	t.Helper()
	key := `"addr": "` + addrs[0] + `"`
	if len(addrs) > 1 {
		b, _ := json.Marshal(addrs)
		key = `"addrs": ` + string(b)
	}
	if extra != "" {
		key += ", " + extra
	}
	return json.RawMessage("{" + key + "}")
}

// redisAnnounce is peer n's announce to torrent hash (20 characters).
func redisAnnounce(hash string, n, left int, event string) string {
	return fmt.Sprintf("GET /announce?info_hash=%s&peer_id=-RD0001-%012d&port=%d&uploaded=0&downloaded=0&left=%d&event=%s&compact=1 HTTP/1.0\r\n\r\n",
		hash, n, 10000+n, left, event)
}

// redisScrape returns incomplete and complete of hash from a scrape.
func redisScrape(t *testing.T, addr, hash string) (incomplete, complete int64) {
	t.Helper()
	m := decodeBody(t, rawGet(t, addr, "GET /scrape?info_hash="+hash+" HTTP/1.0\r\n\r\n"))
	f, _ := m["files"].(map[string]any)[hash].(map[string]any)
	incomplete, _ = f["incomplete"].(int64)
	complete, _ = f["complete"].(int64)
	return incomplete, complete
}

// TestRedisInstancesShareSwarms runs two daemons on one Redis, then on one
// Redis Cluster: a peer announced to A is handed out and counted by B,
// and killing A loses nothing. Each one's /stats counts its own requests.
func TestRedisInstancesShareSwarms(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs func(t *testing.T) []string
	}{
		{"Server", func(t *testing.T) []string { return []string{redistest.Start(t).Addr} }},
		{"Cluster", func(t *testing.T) []string { return redistest.StartCluster(t).Addrs() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fmt.Sprintf(`{"addr": "127.0.0.1:0", "admin_addr": "127.0.0.1:0", "udp_addr": "",
				"tracker": {"driver": "redis", "params": %s}}`, redisParams(t, tc.addrs(t), `"key_prefix": "shared:"`))
			a, b := startDaemon(t, cfg), startDaemon(t, cfg)
			const hash = "rrrrrrrrrrrrrrrrrr01"
			decodeBody(t, rawGet(t, a.public, redisAnnounce(hash, 1, 0, "started")))
			m := decodeBody(t, rawGet(t, b.public, redisAnnounce(hash, 2, 5, "started")))
			if got := compactPeers(t, m["peers"], 6); len(got) != 1 || got[0] != "127.0.0.1:10001" {
				t.Errorf("B handed out %v, want A's seeder 127.0.0.1:10001", got)
			}
			if inc, comp := redisScrape(t, b.public, hash); inc != 1 || comp != 1 {
				t.Errorf("B's scrape: %d leechers, %d seeders; want 1 and 1", inc, comp)
			}

			a.cmd.Process.Kill() // no shutdown: nothing of A's may be lost
			<-a.exited
			m = decodeBody(t, rawGet(t, b.public, redisAnnounce(hash, 3, 5, "started")))
			if got := compactPeers(t, m["peers"], 6); len(got) != 2 {
				t.Errorf("after A was killed, B handed out %v, want A's and B's peers", got)
			}
			if inc, comp := redisScrape(t, b.public, hash); inc != 2 || comp != 1 {
				t.Errorf("after A was killed, B's scrape: %d leechers, %d seeders; want 2 and 1", inc, comp)
			}
			var st map[string]any
			if err := json.Unmarshal([]byte(httpGet(t, "http://"+b.admin+"/stats?flatten")), &st); err != nil {
				t.Fatal(err)
			}
			if st["Tracker.Announces"] != 2.0 || st["Tracker.Scrapes"] != 2.0 {
				t.Errorf("B's /stats: %v announces, %v scrapes; want its own 2 and 2", st["Tracker.Announces"], st["Tracker.Scrapes"])
			}
			b.shutdown(t, syscall.SIGTERM)
		})
	}
}

// failedWithin sends announces of n peers at once and checks each is
// answered with a failure reason within limit.
func failedWithin(t *testing.T, addr, hash string, n int, limit time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			resp := rawGet(t, addr, redisAnnounce(hash, 100+k, 5, "started"))
			if took := time.Since(start); took > limit {
				t.Errorf("an announce took %v with Redis out of reach", took)
			}
			if !strings.Contains(resp, "failure reason") {
				t.Errorf("with Redis out of reach: %q, want a failure reason", resp)
			}
		}()
	}
	wg.Wait()
}

// recovered waits until an announce (of peer 2, a leecher) to every hash
// succeeds again.
func recovered(t *testing.T, addr string, hashes []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, h := range hashes {
		for {
			resp := rawGet(t, addr, redisAnnounce(h, 2, 5, "started"))
			if !strings.Contains(resp, "failure reason") {
				decodeBody(t, resp)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still failing 20s after Redis came back: %q", h, resp)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestRedisStoppedMidRun freezes Redis (SIGSTOP) under a running daemon:
// every announce fails within the timeout, and the daemon recovers by
// itself once Redis continues.
func TestRedisStoppedMidRun(t *testing.T) {
	srv := redistest.Start(t)
	addr, _ := start(t, func(c *config.Config) {
		c.Tracker.Name, c.Tracker.Params = "redis", redisParams(t, []string{srv.Addr}, `"timeout": "300ms"`)
	})
	const hash = "rrrrrrrrrrrrrrrrrr02"
	decodeBody(t, rawGet(t, addr, redisAnnounce(hash, 1, 0, "started")))
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	failedWithin(t, addr, hash, 16, 1500*time.Millisecond)
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	recovered(t, addr, []string{hash})
	if inc, comp := redisScrape(t, addr, hash); comp != 1 || inc < 1 {
		t.Errorf("after the outage: %d leechers, %d seeders; want the seeder from before and the leecher", inc, comp)
	}
}

// TestRedisClusterNodeKilled kills a master of the cluster under a running
// daemon, then restarts it: no announce hangs meanwhile, and every swarm is
// served again once the cluster is whole.
func TestRedisClusterNodeKilled(t *testing.T) {
	c := redistest.StartCluster(t)
	addr, _ := start(t, func(cfg *config.Config) {
		cfg.Tracker.Name, cfg.Tracker.Params = "redis", redisParams(t, c.Addrs(), `"timeout": "300ms"`)
	})
	var hashes []string
	for n := range 30 {
		h := fmt.Sprintf("rrrrrrrrrrrrrrrrrr%02d", 10+n)
		hashes = append(hashes, h)
		decodeBody(t, rawGet(t, addr, redisAnnounce(h, 1, 5, "started")))
	}
	if err := c.Nodes[0].Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past cluster-node-timeout: the cluster knows
	failed := 0
	for _, h := range hashes {
		start := time.Now()
		resp := rawGet(t, addr, redisAnnounce(h, 2, 5, "started"))
		if took := time.Since(start); took > 1500*time.Millisecond {
			t.Errorf("an announce took %v with a master down", took)
		}
		if strings.Contains(resp, "failure reason") {
			failed++
		}
	}
	if failed == 0 {
		t.Error("no announce failed with a master down")
	}
	if err := c.Nodes[0].Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitOK(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	recovered(t, addr, hashes)
}
