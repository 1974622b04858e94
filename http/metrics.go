package http

import (
	"net/http"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/stats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newMetricsHandler serves /metrics: the tracker's figures, read from a
// stats.Snapshot at scrape time (so /stats and /metrics never disagree and
// the request path does nothing for Prometheus), the backend's queue when
// backend implements backend.QueueReporter, extra's figures (a store's on
// a server: its round trips and errors), and the Go runtime's and the
// process's own metrics. Each admin server has its own registry.
func newMetricsHandler(st *stats.Stats, be backend.Conn, extra ...prometheus.Collector) http.Handler {
	queue, _ := be.(backend.QueueReporter)
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newMetricsCollector(st, queue),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(extra...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      newErrorLog(),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// metricsCollector is a prometheus.Collector over a stats.Stats.
type metricsCollector struct {
	stats *stats.Stats
	queue backend.QueueReporter // nil: no backend queue to report

	requests, duration               *prometheus.Desc
	udpConnects, udpBadIDs           *prometheus.Desc
	udpErrors, udpDropped            *prometheus.Desc
	connsOpen, connsAccepted         *prometheus.Desc
	peers, peerEvents, completed     *prometheus.Desc
	torrents, torrentEvents          *prometheus.Desc
	backendQueue, backendFlushErrors *prometheus.Desc
	bounds                           []float64 // the histogram's bucket bounds, in seconds
}

// families are the "family" label values, indexed by stats.Family.
var families = [2]string{"ipv4", "ipv6"}

func newMetricsCollector(st *stats.Stats, queue backend.QueueReporter) *metricsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("chihaya_"+name, help, labels, nil)
	}
	m := &metricsCollector{
		stats: st,
		queue: queue,
		requests: d("requests_total",
			"Requests answered, by transport (http, udp), kind (announce, scrape, other) and outcome (ok, client_error, server_error, limited).",
			"transport", "kind", "outcome"),
		duration: d("request_duration_seconds",
			"Time from reading a request to writing its answer (UDP: from reading its batch to answering it), by transport and kind.",
			"transport", "kind"),
		udpConnects: d("udp_connects_total", "UDP connects answered with a connection ID (BEP 15)."),
		udpBadIDs: d("udp_bad_connection_ids_total",
			"UDP announces and scrapes refused for a forged or expired connection ID."),
		udpErrors:     d("udp_errors_total", "UDP error packets sent, whatever their cause."),
		udpDropped:    d("udp_dropped_total", "UDP packets left unanswered: malformed, oversize, or not worth an answer to an unproven address."),
		connsOpen:     d("connections_open", "Client connections open on the public listener."),
		connsAccepted: d("connections_accepted_total", "Client connections accepted on the public listener."),
		peers: d("peers",
			"Peers in the swarms now, by address family (ipv4, ipv6) and role (leecher, seeder).", "family", "role"),
		peerEvents: d("peer_events_total",
			"Peers that joined a swarm, left it (event=stopped) or were reaped (expired), by family and role.", "family", "role", "event"),
		completed: d("completed_total", "Downloads counted as completed, by family.", "family"),
		torrents:  d("torrents", "Torrents (swarms) in the store now."),
		torrentEvents: d("torrent_events_total",
			"Torrents added (first peer), removed (last peer stopped) or reaped (emptied by expiry).", "event"),
		backendQueue:       d("backend_queue_depth", "Backend writes queued and not yet flushed."),
		backendFlushErrors: d("backend_flush_errors_total", "Backend flushes that failed."),
	}
	for _, b := range stats.LatencyBuckets() {
		m.bounds = append(m.bounds, b.Seconds())
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		m.requests, m.duration, m.connsOpen, m.connsAccepted,
		m.udpConnects, m.udpBadIDs, m.udpErrors, m.udpDropped,
		m.peers, m.peerEvents, m.completed, m.torrents, m.torrentEvents,
	} {
		ch <- d
	}
	if m.queue != nil {
		ch <- m.backendQueue
		ch <- m.backendFlushErrors
	}
}

// Collect implements prometheus.Collector.
func (m *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	snap := m.stats.Snapshot()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}

	for t := range stats.NumTransports {
		tr, tc := stats.Transport(t).String(), &snap.Transports[t]
		for k := range stats.NumKinds {
			kind := stats.Kind(k).String()
			for o := range stats.NumOutcomes {
				counter(m.requests, tc.Requests[k][o], tr, kind, stats.Outcome(o).String())
			}
			h := &tc.Latency[k]
			buckets := make(map[float64]uint64, len(m.bounds))
			for i, b := range m.bounds {
				buckets[b] = h.Buckets[i]
			}
			ch <- prometheus.MustNewConstHistogram(m.duration, h.Count, h.Sum.Seconds(), buckets, tr, kind)
		}
	}
	counter(m.udpConnects, snap.UDP.Connects)
	counter(m.udpBadIDs, snap.UDP.BadConnectionIDs)
	counter(m.udpErrors, snap.UDP.Errors)
	counter(m.udpDropped, snap.UDP.Dropped)

	gauge(m.connsOpen, snap.ConnectionsOpen)
	counter(m.connsAccepted, snap.ConnectionsAccepted)

	for f, fc := range snap.Peers {
		fam := families[f]
		for _, r := range []struct {
			role string
			c    stats.PeerCounts
		}{{"leecher", fc.Leechers}, {"seeder", fc.Seeders}} {
			gauge(m.peers, r.c.Current, fam, r.role)
			counter(m.peerEvents, r.c.Joined, fam, r.role, "joined")
			counter(m.peerEvents, r.c.Left, fam, r.role, "left")
			counter(m.peerEvents, r.c.Reaped, fam, r.role, "reaped")
		}
		counter(m.completed, fc.Completed, fam)
	}

	gauge(m.torrents, snap.Torrents)
	counter(m.torrentEvents, snap.TorrentsAdded, "added")
	counter(m.torrentEvents, snap.TorrentsRemoved, "removed")
	counter(m.torrentEvents, snap.TorrentsReaped, "reaped")

	if m.queue != nil {
		gauge(m.backendQueue, int64(m.queue.QueueDepth()))
		ch <- prometheus.MustNewConstMetric(m.backendFlushErrors, prometheus.CounterValue, float64(m.queue.FlushErrors()))
	}
}
