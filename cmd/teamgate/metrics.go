package main

import (
	"context"
	"math"
	"net/http"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/teamsync"
)

// metrics are teamgate's Prometheus metrics. They are observed from the
// outside of each package (a handler wrapper, the sync adapter, the Graph
// client's observer hook), so no package depends on Prometheus.
type metrics struct {
	reg              *prometheus.Registry
	proxied          *prometheus.CounterVec
	proxyLatency     *prometheus.HistogramVec
	signIns          *prometheus.CounterVec
	reconcileSeconds *prometheus.HistogramVec
	reconcileChanges *prometheus.CounterVec
	graphCalls       *prometheus.CounterVec
	graphRetries     *prometheus.CounterVec
	graphThrottled   *prometheus.CounterVec
	sync             *syncMetrics           // background sync and re-validation (metrics_sync.go)
	deliveries       *prometheus.CounterVec // LiteLLM deliveries (metrics_ops.go)
	activeSessions   *cachedCount           // set by watchSessions (metrics_ops.go)

	// byClass caches the proxied-request series of the status classes
	// 1xx to 5xx, so that a request costs no label lookup (a hash and a
	// lock each).
	byClass [6]classSeries
}

// classSeries are one status class's series, each made on first use (as
// WithLabelValues would), so that /metrics lists only classes seen.
type classSeries struct {
	count   atomic.Pointer[prometheus.Counter]
	latency atomic.Pointer[prometheus.Observer]
}

var classLabels = [6]string{1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.proxied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teamgate_proxied_requests_total", Help: "Requests for proxied paths (all but /oauth2/, /teamgate/ and /.well-known/teamgate/), by response status class: " +
			"the upstream's answers and teamgate's own refusals (401 signed out, 403 team not allowed, 302 to sign-in).",
	}, []string{"class"})
	m.proxyLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "teamgate_proxied_request_header_seconds",
		Help:    "Time from receiving a proxied request to sending its response headers (streams are not timed to their end).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"class"})
	m.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teamgate_sign_ins_total", Help: "Sign-in callbacks by outcome (ok, client_error, failure).",
	}, []string{"outcome"})
	m.reconcileSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "teamgate_reconcile_duration_seconds", Help: "Duration of sign-in reconciles, Graph reads included.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"outcome"})
	m.reconcileChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teamgate_reconcile_changes_total", Help: "What reconciles changed, by kind.",
	}, []string{"change"})
	m.graphCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teamgate_graph_requests_total", Help: "HTTP requests to Microsoft Graph and the token endpoint, by endpoint and status (0: no answer).",
	}, []string{"endpoint", "status"})
	m.graphRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teamgate_graph_retries_total", Help: "Graph requests that were retries of an earlier attempt.",
	}, []string{"endpoint"})
	m.graphThrottled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teamgate_graph_throttled_total", Help: "Graph answers with status 429.",
	}, []string{"endpoint"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "teamgate_build_info", Help: "Always 1; labels tell the build.",
	}, []string{"version", "commit", "goversion"})
	v, c, _ := buildInfo()
	build.WithLabelValues(v, c, goVersion()).Set(1)
	m.reg.MustRegister(m.proxied, m.proxyLatency, m.signIns, m.reconcileSeconds, m.reconcileChanges,
		m.graphCalls, m.graphRetries, m.graphThrottled, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.sync = newSyncMetrics(m.reg)
	m.deliveries = newDeliveryMetrics(m.reg)
	return m
}

// watchStore exports the store's statement counter, so "database queries
// per proxied request" can be read from outside (it must stay 0 in steady state).
func (m *metrics) watchStore(st interface{ Stats() store.Stats }) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "teamgate_db_statements_total", Help: "SQL statements sent to the database (BEGIN and COMMIT included).",
	}, func() float64 { return float64(st.Stats().Statements) }))
}

// watchOutbox exports the LiteLLM outbox backlog (read at scrape time).
func (m *metrics) watchOutbox(st interface {
	OutboxStats(ctx context.Context) (pending, parked int, err error)
}) {
	stats := func(pick func(pending, parked int) int) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			pending, parked, err := st.OutboxStats(ctx)
			if err != nil {
				return math.NaN() // the database is down: say "unknown", not 0
			}
			return float64(pick(pending, parked))
		}
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "teamgate_litellm_outbox_pending", Help: "LiteLLM operations waiting to be delivered.",
		}, stats(func(p, _ int) int { return p })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "teamgate_litellm_outbox_parked", Help: "LiteLLM operations parked after a permanent error (see GET /teamgate/api/outbox).",
		}, stats(func(_, p int) int { return p })),
	)
}

// handler serves /metrics.
func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	return mux
}

// observeGraph is the Graph client's observer hook.
func (m *metrics) observeGraph(ev graph.RequestEvent) {
	m.graphCalls.WithLabelValues(ev.Endpoint, strconv.Itoa(ev.Status)).Inc()
	if ev.Attempt > 1 {
		m.graphRetries.WithLabelValues(ev.Endpoint).Inc()
	}
	if ev.Throttled {
		m.graphThrottled.WithLabelValues(ev.Endpoint).Inc()
	}
}

// observeReconcile records one reconcile's outcome and changes.
func (m *metrics) observeReconcile(res teamsync.Result, d time.Duration, err error) {
	if err != nil {
		m.reconcileSeconds.WithLabelValues("error").Observe(d.Seconds())
		return
	}
	m.reconcileSeconds.WithLabelValues("ok").Observe(d.Seconds())
	c := res.Changes
	for kind, n := range map[string]int{
		"teams_created": len(c.TeamsCreated), "teams_renamed": len(c.TeamsRenamed),
		"teams_assigned": len(c.TeamsAssigned), "teams_unassigned": len(c.TeamsUnassigned),
		"memberships_added": len(c.MembershipsAdded), "memberships_removed": len(c.MembershipsRemoved),
	} {
		if n > 0 {
			m.reconcileChanges.WithLabelValues(kind).Add(float64(n))
		}
	}
}

// wrap counts proxied requests and sign-in outcomes around the gateway.
func (m *metrics) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := classify(r.URL.Path)
		if kind == "" {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, start: time.Now()}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		switch kind {
		case "proxy":
			m.observeProxied(status, sw)
		case "callback":
			outcome := "ok"
			switch {
			case status >= 500:
				outcome = "failure"
			case status >= 400:
				outcome = "client_error"
			}
			m.signIns.WithLabelValues(outcome).Inc()
		}
	})
}

// observeProxied counts a proxied request and its time to headers.
func (m *metrics) observeProxied(status int, sw *statusWriter) {
	i := status / 100
	if i < 1 || i >= len(m.byClass) { // a status net/http would not send anyway
		class := strconv.Itoa(i) + "xx"
		m.proxied.WithLabelValues(class).Inc()
		if !sw.headerAt.IsZero() {
			m.proxyLatency.WithLabelValues(class).Observe(sw.headerAt.Sub(sw.start).Seconds())
		}
		return
	}
	c := &m.byClass[i]
	count := c.count.Load()
	if count == nil {
		// Racing first uses store the same series: WithLabelValues returns
		// the one it made first.
		v := m.proxied.WithLabelValues(classLabels[i])
		count = &v
		c.count.Store(count)
	}
	(*count).Inc()
	if sw.headerAt.IsZero() {
		return
	}
	latency := c.latency.Load()
	if latency == nil {
		v := m.proxyLatency.WithLabelValues(classLabels[i])
		latency = &v
		c.latency.Store(latency)
	}
	(*latency).Observe(sw.headerAt.Sub(sw.start).Seconds())
}

// classify says what a path is for metrics: "proxy", "callback" or "" (other
// teamgate paths, not counted). The gateway does its own, stricter routing.
func classify(p string) string {
	// This runs on every proxied request: the common path, already clean
	// and in lower case, is taken as it is after one look at its bytes.
	c := p
	if !plainPath(p) {
		c = normalizeMetricsPath(p)
	}
	switch {
	case c == "/oauth2/callback":
		return "callback"
	case strings.HasPrefix(c, "/oauth2/") || c == "/oauth2" || strings.HasPrefix(c, "/teamgate/") || c == "/teamgate" ||
		strings.HasPrefix(c, "/.well-known/teamgate/"):
		return ""
	}
	return "proxy"
}

// normalizeMetricsPath is the path classify looks at: backslashes as
// slashes, absolute, cleaned, lower case.
func normalizeMetricsPath(p string) string {
	c := strings.ReplaceAll(p, `\`, "/")
	if !strings.HasPrefix(c, "/") {
		c = "/" + c
	}
	return strings.ToLower(path.Clean(c))
}

// plainPath reports whether normalizeMetricsPath would leave p as it is:
// absolute, lower case, no backslash, no empty, "." or ".." element and no
// trailing slash.
func plainPath(p string) bool {
	if p == "" || p[0] != '/' || len(p) > 1 && p[len(p)-1] == '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' || c >= 'A' && c <= 'Z' || c >= 0x80:
			return false
		case c == '/' && i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.'):
			return false
		}
	}
	return true
}

// statusWriter records the status and when headers went out. Unwrap lets
// http.ResponseController reach Flush and Hijack (streams, WebSockets).
type statusWriter struct {
	http.ResponseWriter
	status   int
	start    time.Time
	headerAt time.Time
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 || code >= 200 && w.status < 200 {
		w.status = code
		w.headerAt = time.Now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status, w.headerAt = http.StatusOK, time.Now()
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status, w.headerAt = http.StatusOK, time.Now()
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func goVersion() string { return runtime.Version() }
