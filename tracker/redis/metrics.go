package redis

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The operations metrics are kept for.
const (
	opAnnounce = iota // an announce, from its call to its answer, waiting for its batch included
	opBatch           // one pipeline of announces (see batcher)
	opIndex           // a cluster's follow-up: a new swarm into the expiry index
	opScrape          // a scrape's pipeline
	opPurge           // one round of a reaper's pass
	numOps
)

var opNames = [numOps]string{"announce", "batch", "index", "scrape", "purge"}

// metrics are the store's Prometheus metrics: Redis's round trips and
// errors, by operation, and the client's connection pool.
type metrics struct {
	latency  *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	byOp     [numOps]prometheus.Observer
	errsByOp [numOps]prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chihaya_redis_round_trip_seconds",
			Help:    "Time from sending a request to Redis to its answer, by operation (announce, batch, index, scrape, purge).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chihaya_redis_errors_total",
			Help: "Requests to Redis that failed (unreachable, timed out, or refused), by operation.",
		}, []string{"op"}),
	}
	for op, name := range opNames {
		m.byOp[op] = m.latency.WithLabelValues(name)
		m.errsByOp[op] = m.errors.WithLabelValues(name)
	}
	return m
}

// observe records one round trip of op that started at start.
func (m *metrics) observe(op int, start time.Time, err error) {
	m.byOp[op].Observe(time.Since(start).Seconds())
	if err != nil {
		m.errsByOp[op].Inc()
	}
}

var (
	poolConns = prometheus.NewDesc("chihaya_redis_pool_connections",
		"Connections of the Redis client's pool, by state (idle, in_use).", []string{"state"}, nil)
	poolTimeouts = prometheus.NewDesc("chihaya_redis_pool_timeouts_total",
		"Times a request found no free connection in the Redis client's pool in time.", nil, nil)
	totalSwarms = prometheus.NewDesc("chihaya_redis_swarms",
		"Swarms in the Redis store, made by every tracker sharing it (one Redis server only).", nil, nil)
	totalPeers = prometheus.NewDesc("chihaya_redis_peers",
		"Peers in the Redis store, by role (leecher, seeder), made by every tracker sharing it (one Redis server only).", []string{"role"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	s.metrics.latency.Describe(ch)
	s.metrics.errors.Describe(ch)
	ch <- poolConns
	ch <- poolTimeouts
	ch <- totalSwarms
	ch <- totalPeers
}

// Collect implements prometheus.Collector: register the store (the
// tracker's Pool) with a registry to have its metrics served.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	s.metrics.latency.Collect(ch)
	s.metrics.errors.Collect(ch)
	st := s.client.PoolStats()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(st.IdleConns), "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(st.TotalConns-st.IdleConns), "in_use")
	ch <- prometheus.MustNewConstMetric(poolTimeouts, prometheus.CounterValue, float64(st.Timeouts))
	// Read from Redis at scrape time; left out when it does not answer.
	if swarms, seeders, leechers, ok, _ := s.Totals(context.Background()); ok {
		ch <- prometheus.MustNewConstMetric(totalSwarms, prometheus.GaugeValue, float64(swarms))
		ch <- prometheus.MustNewConstMetric(totalPeers, prometheus.GaugeValue, float64(seeders), "seeder")
		ch <- prometheus.MustNewConstMetric(totalPeers, prometheus.GaugeValue, float64(leechers), "leecher")
	}
}
