package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chihaya/chihaya/bench/workload"
)

// memory is what a server holds once loaded.
type memory struct {
	peers   int64 // stored, as the server counts them
	rss     int64 // resident bytes
	perPeer int64 // resident bytes gained while loading, per stored peer
}

// fill runs load against srv and measures what srv gained.
func fill(srv *server, name string, load func() (result, error)) (memory, error) {
	rss0 := srv.rss()
	r, err := load()
	if err != nil {
		return memory{}, fmt.Errorf("loading %s: %w", name, err)
	}
	fmt.Printf("  %s: %.0f announces/s, %d errors\n", name, r.rps, r.errors)
	time.Sleep(time.Second) // let the last answers' garbage be collected
	m := memory{rss: srv.rss()}
	if m.peers, err = srv.countPeers(); err != nil {
		return memory{}, err
	}
	if m.peers > 0 {
		m.perPeer = (m.rss - rss0) / m.peers
	}
	return m, nil
}

// answersConnect reports whether a BEP 15 tracker answers a connect
// request at target (udp://host:port) within three seconds.
func answersConnect(target string) bool {
	c, err := net.Dial("udp", strings.TrimPrefix(target, "udp://"))
	if err != nil {
		return false
	}
	defer c.Close()
	req := binary.BigEndian.AppendUint64(nil, 0x41727101980) // protocol_id
	req = binary.BigEndian.AppendUint32(req, 0)              // action: connect
	req = binary.BigEndian.AppendUint32(req, 0x0b3c4d5e)     // transaction_id
	buf := make([]byte, 64)
	for range 3 {
		c.Write(req)
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil && n >= 16 && binary.BigEndian.Uint32(buf) == 0 && binary.BigEndian.Uint32(buf[4:]) == 0x0b3c4d5e {
			return true
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			time.Sleep(time.Second) // refused: nothing listens yet
		}
	}
	return false
}

// A server is a started tracker process.
type server struct {
	cmd             *exec.Cmd
	log             *os.File
	httpURL, udpURL string
	adminURL        string
	exited          chan struct{}
	countPeers      func() (int64, error) // the peers it stores
}

func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *server) stop() {
	if s.alive() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.log.Close()
}

// rss returns the process's resident memory in bytes, 0 once it is gone.
func (s *server) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log.Name())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// start runs the command with its output to logName and waits until every
// TCP address in ready accepts connections.
func start(cmd *exec.Cmd, logName string, ready ...string) (*server, error) {
	log, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	s := &server{cmd: cmd, log: log, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	for _, addr := range ready {
		for deadline := time.Now().Add(15 * time.Second); ; {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if !s.alive() || time.Now().After(deadline) {
				s.stop()
				return nil, fmt.Errorf("%s does not listen on %s; its log: %s", filepath.Base(cmd.Path), addr, s.logTail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(500 * time.Millisecond) // settle, before the first RSS reading
	return s, nil
}

// freePort returns a loopback port that is free for network ("tcp" or
// "udp") now.
func freePort(network string) (string, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.LocalAddr().String(), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startTracker starts bin/chihaya on s.config with loopback addresses.
func startTracker(ctx context.Context, s *settings, work string) (*server, error) {
	raw, err := os.ReadFile(s.config)
	if err != nil {
		return nil, err
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", s.config, err)
	}
	addr, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	admin, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	set := func(k, v string) { cfg[k], _ = json.Marshal(v) }
	set("addr", addr)
	set("admin_addr", admin)
	cfg["private_tracker"] = json.RawMessage("false") // the benchmark's peers have no passkeys
	var udp string
	if s.udp {
		if udp, err = freePort("udp"); err != nil {
			return nil, err
		}
	}
	if configKnows("udp_addr") {
		set("udp_addr", udp) // "" (UDP=0): no UDP frontend, rather than its default port on every interface
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(work, "config.json")
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		return nil, err
	}
	srv, err := start(exec.CommandContext(ctx, "bin/chihaya", "-config", cfgPath), filepath.Join(work, "tracker.log"), addr, admin)
	if err != nil {
		return nil, err
	}
	srv.httpURL = "http://" + addr + "/announce"
	srv.adminURL = "http://" + admin
	if udp != "" {
		srv.udpURL = "udp://" + udp
	}
	srv.countPeers = func() (int64, error) { return trackerPeers(srv.adminURL + "/stats") }
	return srv, nil
}

// trackerPeers returns the peers the tracker stores, leechers and seeders
// of both address families, from its /stats.
func trackerPeers(url string) (int64, error) {
	body, err := get(url)
	if err != nil {
		return 0, err
	}
	type counts struct{ Current int64 }
	type family struct{ Peers, Seeds counts }
	var st struct {
		IPv4 family `json:"Peers.IPv4"`
		IPv6 family `json:"Peers.IPv6"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, fmt.Errorf("%s: %w", url, err)
	}
	return st.IPv4.Peers.Current + st.IPv4.Seeds.Current + st.IPv6.Peers.Current + st.IPv6.Seeds.Current, nil
}

func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	return body, err
}

// startOpentracker starts Debian's opentracker on loopback, HTTP and UDP
// on one port. Debian builds it in whitelist mode: every benchmark
// info_hash is listed.
func startOpentracker(ctx context.Context, s *settings, work string) (*server, error) {
	bin, err := exec.LookPath("opentracker")
	if err != nil {
		return nil, errors.New("OPENTRACKER=1, but opentracker is not installed (Debian: apt-get install opentracker)")
	}
	dir := filepath.Join(work, "ot") // its chroot
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	os.Chmod(work, 0o755) // it drops privileges, then reads the whitelist
	var wl bufio.Writer
	f, err := os.Create(filepath.Join(dir, "wl.txt"))
	if err != nil {
		return nil, err
	}
	wl.Reset(f)
	for k := 1; k <= s.torrents; k++ {
		h := workload.InfoHash(k)
		wl.WriteString(hex.EncodeToString(h[:]) + "\n")
	}
	if err := errors.Join(wl.Flush(), f.Chmod(0o644), f.Close()); err != nil {
		return nil, err
	}
	// One port free for both TCP and UDP.
	var addr string
	for range 20 {
		if addr, err = freePort("tcp"); err != nil {
			return nil, err
		}
		if c, err := net.ListenPacket("udp", addr); err == nil {
			c.Close()
			break
		}
		addr = ""
	}
	if addr == "" {
		return nil, errors.New("no loopback port free for both TCP and UDP")
	}
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"-i", "127.0.0.1", "-p", port, "-P", port, "-d", dir, "-w", "/wl.txt", "-A", "127.0.0.1"}
	if _, err := user.Lookup("_opentracker"); err == nil {
		args = append(args, "-u", "_opentracker")
	}
	srv, err := start(exec.CommandContext(ctx, bin, args...), filepath.Join(work, "opentracker.log"), addr)
	if err != nil {
		return nil, err
	}
	srv.httpURL = "http://" + addr + "/announce"
	srv.udpURL = "udp://" + addr
	srv.countPeers = func() (int64, error) {
		// The first line of /stats?mode=peer is the peers, seeders included.
		body, err := get("http://" + addr + "/stats?mode=peer")
		if err != nil {
			return 0, err
		}
		first, _, _ := strings.Cut(string(body), "\n")
		n, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("opentracker's /stats?mode=peer: %q: %v", body, err)
		}
		return n, nil
	}
	return srv, nil
}
