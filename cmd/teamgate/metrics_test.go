package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
)

// Scrape /metrics after a sign-in and a few proxied requests.
func TestMetricsAfterSignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		b := e.browser()
		b.signIn(e.gw.URL, "/", fakeentra.DemoID("alice"))
		b.api("GET", e.gw.URL+"/v1/models")
		b.api("GET", e.gw.URL+"/v1/models", "X-LiteLLM-Team-Id", "not-my-team") // 403
		e.browser().api("GET", e.gw.URL+"/v1/models")                           // 401

		text := scrape(t, e)
		for _, want := range []string{
			`teamgate_sign_ins_total{outcome="ok"} 1`,
			`teamgate_proxied_requests_total{class="2xx"} 2`, // the page after sign-in and /v1/models
			`teamgate_proxied_requests_total{class="4xx"} 2`,
			`teamgate_proxied_request_header_seconds_count{class="2xx"} 2`,
			`teamgate_reconcile_duration_seconds_count{outcome="ok"} 1`,
			`teamgate_reconcile_changes_total{change="memberships_added"} 2`,
			`teamgate_graph_requests_total{endpoint="memberOf",status="200"} 1`,
			`teamgate_graph_requests_total{endpoint="token",status="200"} 1`,
			`teamgate_build_info{`,
			`teamgate_db_statements_total `,
			`teamgate_litellm_outbox_pending 0`,
			`teamgate_litellm_outbox_parked 0`,
			`go_goroutines`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", grepLines(text, "teamgate_"))
		}
	})
}

// scrape reads the app's /metrics.
func scrape(t *testing.T, e *e2e) string {
	t.Helper()
	srv := httptest.NewServer(e.app.metrics.handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestClassifyPath(t *testing.T) {
	for p, want := range map[string]string{
		"/": "proxy", "/v1/chat/completions": "proxy", "/oauth2/callback": "callback", "/OAuth2/callback/": "callback",
		"/oauth2/start": "", "/teamgate/api/teams": "", "//teamgate/me": "", "/.well-known/teamgate/jwks.json": "",
		"/teamgatex": "proxy",
	} {
		if got := classify(p); got != want {
			t.Errorf("classify(%q) = %q, want %q", p, got, want)
		}
	}
}

// An access line is one JSON object carrying the request id returned to the
// client, the user and the team, and nothing secret.
func TestAccessLogLineIsJSON(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		b := e.browser()
		b.signIn(e.gw.URL, "/", fakeentra.DemoID("alice"))
		res, _ := b.api("GET", e.gw.URL+"/v1/models?key=sk-should-not-be-logged")
		rid := res.Header.Get("X-Request-Id")
		var line map[string]any
		for _, l := range strings.Split(e.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["request_id"] == rid {
				line = m
			}
		}
		if line == nil {
			t.Fatalf("no JSON access line with request_id %q in:\n%s", rid, e.logs.String())
		}
		want := map[string]any{"method": "GET", "path": "/v1/models", "status": float64(200),
			"user_id": fakeentra.DemoID("alice"), "team_id": fakeentra.DemoID("data-science"), "client_ip": "127.0.0.1", "level": "INFO"}
		for k, v := range want {
			if line[k] != v {
				t.Errorf("access line %s = %v, want %v", k, line[k], v)
			}
		}
		if strings.Contains(e.logs.String(), "sk-should-not-be-logged") {
			t.Error("the query string reached the log")
		}
	})
}

func TestClassifyDoesNotAllocateForCleanPaths(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { classify("/v1/chat/completions") }); n != 0 {
		t.Errorf("classify allocates %v times per clean path", n)
	}
}
