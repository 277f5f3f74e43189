package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
)

// stepClock is a clock that moves only when the test says.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *cachedCount) setClock(now func() time.Time) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}

// metricValue returns the value of the sample line that starts with series
// (name and labels exactly as exposed), and whether there is one.
func metricValue(text, series string) (float64, bool) {
	for _, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(l, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

func wantMetric(t *testing.T, text, series string, want float64) {
	t.Helper()
	if got, ok := metricValue(text, series); !ok || got != want {
		t.Errorf("%s = %v (present %v), want %v\n%s", series, got, ok, want, grepLines(text, strings.SplitN(series, "{", 2)[0]))
	}
}

// teamgate_active_sessions counts the live sessions in the database: up
// with each sign-in, down with a sign-out, and read at most every 5s.
func TestMetricsActiveSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		clk := &stepClock{t: time.Now()}
		e.app.metrics.activeSessions.setClock(clk.now)
		wantMetric(t, scrape(t, e), "teamgate_active_sessions", 0)

		alice := e.browser()
		alice.signIn(e.gw.URL, "/", fakeentra.DemoID("alice"))
		wantMetric(t, scrape(t, e), "teamgate_active_sessions", 0) // the cached count
		clk.advance(activeSessionsTTL)
		wantMetric(t, scrape(t, e), "teamgate_active_sessions", 1)

		e.browser().signIn(e.gw.URL, "/", fakeentra.DemoID("bob"))
		clk.advance(activeSessionsTTL)
		wantMetric(t, scrape(t, e), "teamgate_active_sessions", 2)

		alice.get(e.gw.URL + "/oauth2/sign_out")
		clk.advance(activeSessionsTTL)
		wantMetric(t, scrape(t, e), "teamgate_active_sessions", 1)
	})
}

// With provisioning on and LiteLLM failing, deliveries are counted by kind
// and outcome, and the outbox gauges show the backlog and the parked op.
func TestMetricsLiteLLMDeliveries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		p := startProvisionE2E(t, st, nil)
		p.litellm.SetDown(true)
		p.signIn("alice-oid")
		text := scrape(t, p.e2e)
		pending, _ := metricValue(text, "teamgate_litellm_outbox_pending")
		if pending < 1 {
			t.Fatalf("teamgate_litellm_outbox_pending = %v after a sign-in with LiteLLM down, want > 0", pending)
		}
		wantMetric(t, text, "teamgate_litellm_outbox_parked", 0)

		p.drain() // every attempt fails
		text = scrape(t, p.e2e)
		for _, kind := range []string{"team_new", "user_new"} {
			if n, _ := metricValue(text, fmt.Sprintf(`teamgate_litellm_deliveries_total{kind=%q,outcome="retry"}`, kind)); n < 1 {
				t.Errorf("%s retries = %v with LiteLLM down, want > 0\n%s", kind, n, grepLines(text, "teamgate_litellm"))
			}
		}
		if got, _ := metricValue(text, "teamgate_litellm_outbox_pending"); got != pending {
			t.Errorf("pending = %v after failed deliveries, want still %v", got, pending)
		}

		// LiteLLM is back but refuses the user for good: the teams are
		// delivered, the user is parked.
		p.litellm.SetDown(false)
		p.litellm.FailNext("/user/new", 1, http.StatusUnprocessableEntity, "")
		p.clock.advance(time.Hour) // every retry is due
		p.drain()
		text = scrape(t, p.e2e)
		wantMetric(t, text, `teamgate_litellm_deliveries_total{kind="user_new",outcome="parked"}`, 1)
		if n, _ := metricValue(text, `teamgate_litellm_deliveries_total{kind="team_new",outcome="ok"}`); n < 1 {
			t.Errorf("team_new ok = %v, want > 0\n%s", n, grepLines(text, "teamgate_litellm"))
		}
		wantMetric(t, text, "teamgate_litellm_outbox_parked", 1)
		wantMetric(t, text, "teamgate_litellm_outbox_pending", 0)
	})
}

// A 429 from Graph is counted as throttled, and the request that follows
// as a retry.
func TestMetricsGraphThrottledAndRetried(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		e.tenant.FailNext("/memberOf", 1, http.StatusTooManyRequests, "0")
		e.browser().signIn(e.gw.URL, "/", fakeentra.DemoID("alice"))
		text := scrape(t, e)
		wantMetric(t, text, `teamgate_graph_requests_total{endpoint="memberOf",status="429"}`, 1)
		wantMetric(t, text, `teamgate_graph_requests_total{endpoint="memberOf",status="200"}`, 1)
		wantMetric(t, text, `teamgate_graph_throttled_total{endpoint="memberOf"}`, 1)
		wantMetric(t, text, `teamgate_graph_retries_total{endpoint="memberOf"}`, 1)
		wantMetric(t, text, `teamgate_sign_ins_total{outcome="ok"}`, 1)
	})
}

// With server.metrics_listen set, serve answers /metrics on that listener
// only; the main listener treats /metrics as any proxied path. Proxied
// requests count teamgate's own refusals too, as the Help text says.
func TestMetricsListenerIsSeparate(t *testing.T) {
	forEachBackend(t, testMetricsListenerIsSeparate)
}

func testMetricsListenerIsSeparate(t *testing.T, st store.Store) {
	e := startE2E(t, st, e2eOptions{tweak: func(c *Config) { c.Server.MetricsListen = "127.0.0.1:0" }})
	addr := serveRaw(t, e)
	maddr := waitLogAddr(t, e.logs, "metrics listening")
	if maddr == addr {
		t.Fatalf("metrics on the main listener %s", maddr)
	}

	// Signed out, on the main listener: /metrics is a proxied path, so
	// teamgate refuses it (401) and never forwards it.
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	req.Header.Set("Accept", "application/json")
	res, body := do(t, http.DefaultClient, req)
	if res.StatusCode != http.StatusUnauthorized || strings.Contains(body, "teamgate_") {
		t.Errorf("main listener /metrics: %d\n%.300s", res.StatusCode, body)
	}
	if n := e.upstream.count(); n != 0 {
		t.Errorf("the upstream received %d requests", n)
	}

	res, body = do(t, http.DefaultClient, mustReq(t, http.MethodGet, "http://"+maddr+"/metrics"))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("metrics listener: %d", res.StatusCode)
	}
	wantMetric(t, body, `teamgate_proxied_requests_total{class="4xx"}`, 1) // the refused /metrics
	if !strings.Contains(body, "teamgate_proxied_requests_total Requests for proxied paths") ||
		!strings.Contains(body, "teamgate's own refusals") {
		t.Errorf("the proxied-requests Help text does not say refusals count:\n%s", grepLines(body, "# HELP teamgate_proxied"))
	}
	if res, _ := do(t, http.DefaultClient, mustReq(t, http.MethodGet, "http://"+maddr+"/teamgate/healthz")); res.StatusCode != http.StatusNotFound {
		t.Errorf("the metrics listener serves other paths: %d", res.StatusCode)
	}
}

// waitLogAddr waits for the JSON log line msg and returns its addr.
func waitLogAddr(t *testing.T, logs *syncBuffer, msg string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, l := range strings.Split(logs.String(), "\n") {
			var m struct{ Msg, Addr string }
			if json.Unmarshal([]byte(l), &m) == nil && m.Msg == msg && m.Addr != "" {
				return m.Addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line:\n%s", msg, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
