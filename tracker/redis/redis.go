// Package redis registers the "redis" tracker driver: swarms kept in Redis
// or a Redis Cluster, so that several tracker processes, on several
// machines, serve one set of swarms.
//
// Each announce is one round trip: a Lua script, loaded once and called by
// its SHA1, applies the announce, counts the swarm and picks the peers,
// atomically. A swarm's keys share the hash tag {<info_hash in hex>}, so
// the script runs unchanged on a cluster; scripts.go describes the keys.
// A scrape is one pipeline of HMGETs.
//
// Expiry scans nothing: every swarm with peers is in one of 16 sorted sets
// (the expiry index, spread over the cluster's slots), scored no later
// than its oldest peer's last announce. A reaper takes the swarms whose
// score is older than the peer lifetime out of the index (a swarm another
// reaper took is skipped), removes their expired peers in batches, and
// puts back those that still have peers, scored by their oldest.
//
// Parameters ("tracker.params"):
//
//	{"addr": "127.0.0.1:6379"}       one Redis server
//	{"addrs": ["host:port", ...]}    or a Redis Cluster: some of its nodes
//	{"password": ""}                 AUTH password
//	{"db": 0}                        database (one server only)
//	{"pool_size": 0}                 connections per server (0: 10 per CPU)
//	{"timeout": "1s"}                the longest an announce waits on Redis
//	{"key_prefix": "chihaya:"}       prefix of every key, so that one Redis
//	                                 can serve several trackers
package redis

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/tracker"
	"github.com/golang/glog"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
)

func init() {
	tracker.Register("redis", driver{})
	goredis.SetLogger(glogLogger{})
}

type driver struct{}

// Params are the driver's configuration ("tracker.params").
type Params struct {
	Addr      string          `json:"addr"`
	Addrs     []string        `json:"addrs"`
	Password  string          `json:"password"`
	DB        int             `json:"db"`
	PoolSize  int             `json:"pool_size"`
	Timeout   config.Duration `json:"timeout"`
	KeyPrefix *string         `json:"key_prefix"`
}

// Defaults of the parameters.
const (
	DefaultAddr      = "127.0.0.1:6379"
	DefaultTimeout   = time.Second
	DefaultKeyPrefix = "chihaya:"
)

// check validates p and fills in the defaults.
func (p *Params) check() error {
	const at = "tracker.params: "
	if p.Addr != "" && len(p.Addrs) > 0 {
		return errors.New(at + "addr and addrs: give one (addr for one server, addrs for a cluster's nodes)")
	}
	if p.Addr == "" && len(p.Addrs) == 0 {
		p.Addr = DefaultAddr
	}
	for k, a := range append([]string{p.Addr}, p.Addrs...) {
		if a == "" && k == 0 {
			continue
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			key := "addr"
			if k > 0 {
				key = fmt.Sprintf("addrs[%d]", k-1)
			}
			return fmt.Errorf(at+"%s: %q is not host:port", key, a)
		}
	}
	if p.DB < 0 {
		return fmt.Errorf(at+"db: %d is negative", p.DB)
	}
	if p.DB != 0 && len(p.Addrs) > 0 {
		return errors.New(at + "db: a Redis Cluster has database 0 only")
	}
	if p.PoolSize < 0 {
		return fmt.Errorf(at+"pool_size: %d is negative", p.PoolSize)
	}
	if p.Timeout.Duration == 0 {
		p.Timeout.Duration = DefaultTimeout
	}
	if p.Timeout.Duration < 0 {
		return fmt.Errorf(at+"timeout: %v is negative", p.Timeout.Duration)
	}
	if p.KeyPrefix == nil {
		s := DefaultKeyPrefix
		p.KeyPrefix = &s
	}
	if strings.ContainsAny(*p.KeyPrefix, "{}") {
		return fmt.Errorf(at+"key_prefix: %q has a brace, which would break the keys' cluster hash tags", *p.KeyPrefix)
	}
	return nil
}

// where names the servers of p, for errors.
func (p *Params) where() string {
	if len(p.Addrs) > 0 {
		return "addrs " + strings.Join(p.Addrs, ",")
	}
	return "addr " + p.Addr
}

// Open connects to Redis and checks it answers, within the timeout.
func (driver) Open(opts tracker.Options) (tracker.Pool, error) {
	var p Params
	if err := config.DecodeParams("tracker.params", opts.Params, &p); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return open(p, opts)
}

// Store is a swarm store in Redis, and its own Pool.
type Store struct {
	client  goredis.UniversalClient
	cluster bool
	p       Params
	opts    tracker.Options
	conn    tracker.Conn // what Get hands out: the store, whose Close does nothing
	prefix  string
	index   [indexKeys]string // the expiry index's keys
	totals  string            // the totals' key, on a single server

	// The same, and announceScript's SHA1, boxed once for the announces.
	indexArgs   [indexKeys]any
	totalsArg   any
	announceSHA any
	dual        bool
	private     bool
	metrics     *metrics
	batch       *batcher
}

func open(p Params, opts tracker.Options) (*Store, error) {
	s := &Store{p: p, opts: opts, prefix: *p.KeyPrefix, dual: opts.DualStacked, private: opts.Private, metrics: newMetrics()}
	s.conn = tracker.NopCloser(s)
	t := p.Timeout.Duration
	if len(p.Addrs) > 0 {
		s.cluster = true
		s.client = goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs: p.Addrs, Password: p.Password, PoolSize: p.PoolSize,
			DialTimeout: t, ReadTimeout: t, WriteTimeout: t, PoolTimeout: t,
			ContextTimeoutEnabled: true,
			DisableIdentity:       true,
		})
	} else {
		s.client = goredis.NewClient(&goredis.Options{
			Addr: p.Addr, Password: p.Password, DB: p.DB, PoolSize: p.PoolSize,
			DialTimeout: t, ReadTimeout: t, WriteTimeout: t, PoolTimeout: t,
			ContextTimeoutEnabled: true,
			DisableIdentity:       true,
		})
	}
	for k := range s.index {
		s.index[k] = s.prefix + "expiry{" + indexTag(k) + "}"
	}
	s.totals = s.prefix + "totals"
	for k, key := range s.index {
		s.indexArgs[k] = key
	}
	s.totalsArg, s.announceSHA = s.totals, announce.sha
	ctx, cancel := context.WithTimeout(context.Background(), t)
	defer cancel()
	if err := s.Check(ctx); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("tracker.params: %s: %w", p.where(), err)
	}
	if !s.cluster {
		info, err := s.client.Info(ctx, "cluster").Result()
		if err == nil && strings.Contains(info, "cluster_enabled:1") {
			s.client.Close()
			return nil, fmt.Errorf("tracker.params: addr %s is a node of a Redis Cluster: give the cluster's nodes as addrs", p.Addr)
		}
	}
	if err := s.load(ctx); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("tracker.params: %s: loading the scripts: %w", p.where(), err)
	}
	s.batch = newBatcher(s)
	return s, nil
}

// The optional interfaces the store implements.
var (
	_ tracker.Checker      = (*Store)(nil)
	_ prometheus.Collector = (*Store)(nil)
)

// Check reports whether every Redis server of the store answers within
// the timeout, as tracker.Checker asks.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.p.Timeout.Duration)
	defer cancel()
	if c, ok := s.client.(*goredis.ClusterClient); ok {
		return c.ForEachShard(ctx, func(ctx context.Context, n *goredis.Client) error {
			return n.Ping(ctx).Err()
		})
	}
	return s.client.Ping(ctx).Err()
}

// Get returns a connection: the store itself, which allocates nothing.
// Every call of it borrows a Redis connection from the client's pool.
func (s *Store) Get() (tracker.Conn, error) { return s.conn, nil }

// Close closes the client's connections; the data stays in Redis. Calls
// after the first do nothing.
func (s *Store) Close() error {
	if !s.batch.close(goredis.ErrClosed) {
		return nil
	}
	return s.client.Close()
}

// swarmKeys returns the keys of the swarm h: its hash, IPv4 set and IPv6
// set (see scripts.go).
func (s *Store) swarmKeys(h *bittorrent.InfoHash) [3]string {
	base := s.swarmKey(h)
	return [3]string{base, base + "4", base + "6"}
}

// swarmKey returns the key of swarm h's hash, "<prefix>{<hex info_hash>}",
// whose hash tag the swarm's other keys share.
func (s *Store) swarmKey(h *bittorrent.InfoHash) string {
	var buf [128]byte
	b := buf[:0] // on the stack for any prefix up to 86 bytes
	b = append(b, s.prefix...)
	b = append(b, '{')
	b = hex.AppendEncode(b, h[:])
	b = append(b, '}')
	return string(b)
}

// indexKey returns the expiry index key of swarm h.
func (s *Store) indexKey(h *bittorrent.InfoHash) string { return s.index[h[0]%indexKeys] }

// Options bits of announceScript.
const (
	optDual = 1 << iota
	optRespectAF
	optPurgeEmpty
	optIDs
	optPrivate
)

// Announce applies an announce, as tracker.Conn's Announce does.
func (s *Store) Announce(ctx context.Context, a *tracker.Announce, u tracker.Update, resp *tracker.AnnounceResponse) error {
	ctx, cancel := context.WithTimeout(ctx, s.p.Timeout.Duration)
	defer cancel()
	want := min(u.Want, 1<<16-1)
	if u.Event == bittorrent.Stopped {
		want = 0
	}
	c := newCall(ctx, announce)
	// The command, its constant parts boxed once in advance: an argument
	// boxed into an interface per announce is an allocation, and under
	// load the collector's work for them cost more than the store's.
	c.args = append(c.args, evalsha, s.announceSHA)
	if s.cluster {
		c.args = append(c.args, oneKey, s.hashKey(&a.InfoHash))
	} else {
		k := a.InfoHash[0] % indexKeys
		c.args = append(c.args, threeKeys, s.hashKey(&a.InfoHash), s.indexArgs[k], s.totalsArg)
	}
	c.args = append(c.args, s.announceArg(a, u, want))
	start := time.Now()
	res, err := s.batch.run(c)
	s.metrics.observe(opAnnounce, start, err)
	if err != nil {
		return fmt.Errorf("redis: announce: %w", err)
	}
	r, _ := res.(string)
	const head = 2 + 9*4
	if len(r) < head {
		return fmt.Errorf("redis: announce: unexpected reply %T of %d bytes", res, len(r))
	}
	u32 := func(k int) int { return int(binary.BigEndian.Uint32([]byte(r[k : k+4]))) }
	resp.Change = bittorrent.Change(r[0])
	resp.Complete, resp.Incomplete, resp.Downloaded = u32(2), u32(6), u32(10)
	var part [6]string
	off := head
	for k := range part {
		n := u32(14 + 4*k)
		if off+n > len(r) {
			return fmt.Errorf("redis: announce: reply of %d bytes cut short", len(r))
		}
		part[k], off = r[off:off+n], off+n
	}
	resp.Peers4 = append(resp.Peers4, part[0]...)
	resp.IDs4 = append(resp.IDs4, part[1]...)
	resp.Peers6 = append(resp.Peers6, part[2]...)
	resp.IDs6 = append(resp.IDs6, part[3]...)
	// The members the script left to pick from: the announcer's family
	// first.
	n := resp.NumPeers()
	if a.Addr.Is6() {
		n = takePeers(resp, a, part[5], true, n, want)
		takePeers(resp, a, part[4], false, n, want)
	} else {
		n = takePeers(resp, a, part[4], false, n, want)
		takePeers(resp, a, part[5], true, n, want)
	}
	return s.indexSwarm(ctx, a, r[1] == 1)
}

// Constant parts of the announce command, boxed once.
var (
	evalsha   any = "evalsha"
	oneKey    any = 1
	threeKeys any = 3
)

// hashKey returns the key of swarm h's hash (see scripts.go), boxed.
func (s *Store) hashKey(h *bittorrent.InfoHash) any { return s.swarmKey(h) }

// announceArg returns announceScript's argument for a (see there), boxed.
func (s *Store) announceArg(a *tracker.Announce, u tracker.Update, want int) any {
	var b [160]byte
	buf := append(b[:0], a.PeerID[:]...)
	fam := byte('4')
	if a.Addr.Is6() {
		fam = '6'
	}
	seeder := byte('0')
	if a.Seeder() {
		seeder = '1'
	}
	var opts byte
	if s.dual {
		opts |= optDual
	}
	if s.opts.RespectAF {
		opts |= optRespectAF
	}
	if u.PurgeEmpty {
		opts |= optPurgeEmpty
	}
	if a.PeerIDs {
		opts |= optIDs
	}
	if s.private {
		opts |= optPrivate
	}
	buf = append(buf, fam, seeder, byte(u.Event), opts, byte(s.opts.PreferredSubnet(a.Addr.Is6())), byte(want>>8), byte(want))
	buf = binary.BigEndian.AppendUint32(buf, rand.Uint32())
	buf = binary.BigEndian.AppendUint32(buf, rand.Uint32())
	buf = append(buf, a.InfoHash[:]...)
	buf = binary.BigEndian.AppendUint32(buf, u.UserID)
	if a.Addr.Is6() {
		a16 := a.Addr.As16()
		buf = append(buf, a16[:]...)
	} else {
		a4 := a.Addr.As4()
		buf = append(buf, a4[:]...)
	}
	buf = append(buf, byte(a.Port>>8), byte(a.Port))
	now := a.When().Unix()
	buf = strconv.AppendInt(buf, now, 10)
	buf = append(buf, ' ')
	if a.Seeder() {
		now += 1 << 32
	}
	buf = strconv.AppendInt(buf, now, 10)
	return string(buf)
}

// indexSwarm puts the announce's swarm in the expiry index if the script asked
// for it: on a cluster the index is on another slot than the swarm, so the
// script cannot; on one server it did.
func (s *Store) indexSwarm(ctx context.Context, a *tracker.Announce, asked bool) error {
	if !asked {
		return nil
	}
	start := time.Now()
	err := s.client.ZAddNX(ctx, s.indexKey(&a.InfoHash), goredis.Z{Score: float64(a.When().Unix()), Member: string(a.InfoHash[:])}).Err()
	s.metrics.observe(opIndex, start, err)
	if err != nil {
		return fmt.Errorf("redis: announce: indexing the swarm for expiry: %w", err)
	}
	return nil
}

// takePeers appends to resp the peers of members (set members of one
// family, end to end: peer_id, packed address and port) other than the
// announcer, until want are handed out; n are so far. It returns how many
// are then.
func takePeers(resp *tracker.AnnounceResponse, a *tracker.Announce, members string, v6 bool, n, want int) int {
	size, peers, ids := bittorrent.PackedIPv4, &resp.Peers4, &resp.IDs4
	if v6 {
		size, peers, ids = bittorrent.PackedIPv6, &resp.Peers6, &resp.IDs6
	}
	stride := bittorrent.PeerIDSize + size
	for i := 0; i+stride <= len(members) && n < want; i += stride {
		id := members[i : i+bittorrent.PeerIDSize]
		if id == string(a.PeerID[:]) {
			continue
		}
		*peers = append(*peers, members[i+bittorrent.PeerIDSize:i+stride]...)
		if a.PeerIDs {
			*ids = append(*ids, id...)
		}
		n++
	}
	return n
}

func toInt(v any) int {
	n, _ := v.(int64)
	return int(n)
}

// Scrape appends the figures of each hash to out, as tracker.Conn's Scrape
// does: one pipeline of HMGETs.
func (s *Store) Scrape(ctx context.Context, hashes []bittorrent.InfoHash, out []tracker.Scrape) ([]tracker.Scrape, error) {
	ctx, cancel := context.WithTimeout(ctx, s.p.Timeout.Duration)
	defer cancel()
	start := time.Now()
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.SliceCmd, len(hashes))
	for i := range hashes {
		cmds[i] = pipe.HMGet(ctx, s.swarmKeys(&hashes[i])[0], "c", "i", "d")
	}
	_, err := pipe.Exec(ctx)
	s.metrics.observe(opScrape, start, err)
	if err != nil {
		return out, fmt.Errorf("redis: scrape: %w", err)
	}
	for i, cmd := range cmds {
		sc := tracker.Scrape{InfoHash: hashes[i]}
		if v := cmd.Val(); len(v) == 3 {
			sc.Complete, sc.Incomplete, sc.Downloaded = atoi(v[0]), atoi(v[1]), atoi(v[2])
		}
		out = append(out, sc)
	}
	return out, nil
}

func atoi(v any) int {
	s, _ := v.(string)
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return n
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// glogLogger sends go-redis's own complaints (failed dials, mostly) to
// glog at verbosity 1: the errors that matter reach the tracker as the
// errors of its requests, and are counted in the metrics.
type glogLogger struct{}

func (glogLogger) Printf(_ context.Context, format string, v ...any) {
	if glog.V(1) {
		glog.InfoDepth(2, fmt.Sprintf(format, v...))
	}
}
