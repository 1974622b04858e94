package chihaya

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/config"
)

// queueingBackend discards announces but reports a write queue, as a
// database backend does, so that /metrics has the backend's metrics too.
type queueingBackend struct{ queued atomic.Int64 }

func (b *queueingBackend) RecordAnnounce(backend.Announce) error { b.queued.Add(1); return nil }
func (b *queueingBackend) Close() error                          { return nil }
func (b *queueingBackend) QueueDepth() int                       { return int(b.queued.Load()) }
func (b *queueingBackend) FlushErrors() uint64                   { return 0 }

var _ backend.QueueReporter = (*queueingBackend)(nil)

type queueingDriver struct{}

func (queueingDriver) Open(json.RawMessage) (backend.Conn, error) { return &queueingBackend{}, nil }

func init() { backend.Register("test-queueing", queueingDriver{}) }

// scrapeInterval is how often the test's Prometheus scrapes the daemon,
// and rateInterval Grafana's $__rate_interval for it: max($__interval +
// scrape interval, 4 * scrape interval), 4 * scrape interval for a recent
// range.
const (
	scrapeInterval = time.Second
	rateInterval   = 4 * scrapeInterval
)

// grafanaVars are the values the test gives the dashboard's variables, as
// Grafana would with the Prometheus data source's scrape interval set to
// scrapeInterval and "All" instances selected.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", rateInterval.String(),
	"$__interval", scrapeInterval.String(),
	`"$instance"`, `".*"`, // the instance variable's allValue
	`"${instance}"`, `".*"`,
)

// TestGrafanaDashboardQueries runs a real Prometheus on loopback, scraping
// the admin listener's /metrics (which promtool checks first), and
// evaluates every query of the shipped dashboard (dist/grafana/chihaya.json)
// against what it scraped: each must return data.
func TestGrafanaDashboardQueries(t *testing.T) {
	promtool := needProgram(t, "promtool", "prometheus")
	prometheus := needProgram(t, "prometheus", "prometheus")
	exprs, variables := dashboardQueries(t, "dist/grafana/chihaya.json")

	public, admin := start(t, func(c *config.Config) { c.Backend.Name = "test-queueing" })
	announce := func(peer int, left int, event string) {
		t.Helper()
		decodeBody(t, rawGet(t, public, fmt.Sprintf("GET /announce?info_hash=pppppppppppppppppppp&peer_id=-PR0001-%012d&port=%d"+
			"&uploaded=0&downloaded=0&left=%d&event=%s HTTP/1.0\r\n\r\n", peer, 7000+peer, left, event)))
	}
	traffic := func() {
		t.Helper()
		announce(1, 0, "started")
		announce(2, 100, "started")
		announce(2, 0, "completed")
		announce(3, 100, "started")
		announce(3, 100, "stopped")
		decodeBody(t, rawGet(t, public, "GET /scrape?info_hash=pppppppppppppppppppp HTTP/1.0\r\n\r\n"))
		rawGet(t, public, "GET /announce?info_hash=short HTTP/1.0\r\n\r\n") // a client error
	}
	traffic()

	metrics := httpGet(t, "http://"+admin+"/metrics")
	if !strings.Contains(metrics, "\nchihaya_requests_total{") {
		t.Fatalf("/metrics has no chihaya_requests_total:\n%s", metrics)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(metrics)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	prom := startPrometheus(t, prometheus, admin)
	// Enough scrapes for every rate: two in its window. Traffic keeps
	// coming meanwhile, for the rates to measure.
	var at time.Time
	deadline := time.Now().Add(30 * time.Second)
	for {
		traffic()
		at = time.Now()
		r, err := promQuery(prom, `count_over_time(up{job="chihaya"}[`+rateInterval.String()+`]) >= 2 and up{job="chihaya"} == 1`, at)
		if err != nil {
			t.Fatal(err)
		}
		if len(r) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has not scraped the daemon twice in %v after 30s; targets:\n%s", rateInterval, httpGet(t, prom+"/api/v1/targets"))
		}
		time.Sleep(500 * time.Millisecond)
	}

	for _, expr := range exprs {
		q := grafanaVars.Replace(expr)
		if strings.Contains(q, "$") {
			t.Errorf("%s: a Grafana variable the test does not know: give it a value in grafanaVars", expr)
			continue
		}
		if r, err := promQuery(prom, q, at); err != nil || len(r) == 0 {
			t.Errorf("no data (%v) for the dashboard's query\n\t%s\nevaluated as\n\t%s", err, expr, q)
		}
	}
	// The instance variable's query, label_values(chihaya_requests_total,
	// instance), is Grafana's: Prometheus answers it from its label values.
	for _, v := range variables {
		metric, label, ok := parseLabelValues(v)
		if !ok {
			t.Errorf("variable query %q: the test knows only label_values(metric, label)", v)
			continue
		}
		var values struct {
			Status string
			Data   []string
		}
		body := httpGet(t, prom+"/api/v1/label/"+label+"/values?"+url.Values{"match[]": {metric}}.Encode())
		if err := json.Unmarshal([]byte(body), &values); err != nil || values.Status != "success" {
			t.Fatalf("label values: %v: %s", err, body)
		}
		if len(values.Data) == 0 || label == "instance" && !slices.Contains(values.Data, admin) {
			t.Errorf("variable query %q gives %v", v, values.Data)
		}
	}
}

// dashboardQueries returns the PromQL of every panel of a Grafana
// dashboard, and the queries of its query variables.
func dashboardQueries(t *testing.T, path string) (exprs, variables []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string
		Targets []struct{ Expr string }
		Panels  json.RawMessage // a row's panels
	}
	var dash struct {
		Panels     []panel
		Templating struct {
			List []struct {
				Type  string
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for i := 0; i < len(dash.Panels); i++ {
		p := dash.Panels[i]
		if len(p.Panels) > 0 {
			var nested []panel
			if err := json.Unmarshal(p.Panels, &nested); err != nil {
				t.Fatalf("%s: row %q: %v", path, p.Title, err)
			}
			dash.Panels = append(dash.Panels, nested...)
		}
		for _, target := range p.Targets {
			if target.Expr == "" {
				t.Errorf("%s: panel %q has a target without a query", path, p.Title)
			}
			exprs = append(exprs, target.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("%s: a variable's query: %v", path, err)
		}
		variables = append(variables, q.Query)
	}
	if len(exprs) == 0 {
		t.Fatalf("%s: no queries found", path)
	}
	return exprs, variables
}

// parseLabelValues reads Grafana's label_values(metric, label).
func parseLabelValues(q string) (metric, label string, ok bool) {
	args, ok1 := strings.CutPrefix(q, "label_values(")
	args, ok2 := strings.CutSuffix(args, ")")
	if !ok1 || !ok2 {
		return "", "", false
	}
	metric, label, ok = strings.Cut(args, ",")
	return strings.TrimSpace(metric), strings.TrimSpace(label), ok
}

// startPrometheus runs Prometheus on a free loopback port, everything it
// writes in a temporary directory, scraping the daemon's admin listener
// every scrapeInterval, and returns its URL once it is ready.
func startPrometheus(t *testing.T, bin, admin string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: chihaya
    static_configs:
      - targets: [%[2]q]
`, scrapeInterval, admin)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := startProcess(t, exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	))
	waitPort(t, addr, p)
	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus not ready after 15s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// promQuery evaluates query at time at through Prometheus's HTTP API and
// returns the result's series (or its scalar).
func promQuery(prom, query string, at time.Time) ([]json.RawMessage, error) {
	body, err := fetch(prom + "/api/v1/query?" + url.Values{
		"query": {query},
		"time":  {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	}.Encode())
	if err != nil {
		return nil, err
	}
	var r struct {
		Data struct {
			ResultType string
			Result     json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("%w: %s", err, body)
	}
	if r.Data.ResultType == "scalar" || r.Data.ResultType == "string" {
		return []json.RawMessage{r.Data.Result}, nil
	}
	var series []json.RawMessage
	if err := json.Unmarshal(r.Data.Result, &series); err != nil {
		return nil, fmt.Errorf("result %s: %w", r.Data.Result, err)
	}
	return series, nil
}

// fetch returns the body of a 200 answer to GET url.
func fetch(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), err
}

// httpGet is fetch failing the test on an error.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	body, err := fetch(url)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
