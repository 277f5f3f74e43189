package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestStreamsFlushEachEvent(t *testing.T) {
	for _, path := range []string{"/sse", "/ndjson"} {
		t.Run(path, func(t *testing.T) {
			h := newHarness(t)
			cookie := h.signedInDirect(aliceID)
			req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
			req.Header.Set("Cookie", DefaultCookieName+"="+cookie)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			// The upstream still holds the stream open: this read can only
			// succeed if the gateway flushed the first event on its own.
			if line := readLine(t, br); line != "data: first\n" {
				t.Fatalf("first line %q", line)
			}
			readLine(t, br)
			h.upstream.releaseAll()
			if line := readLine(t, br); line != "data: second\n" {
				t.Fatalf("second line %q", line)
			}
		})
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedIn("alice@example.com")
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: gateway\r\nCookie: %s=%s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Forwarded-User: evil\r\n\r\n", DefaultCookieName, cookie)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	io.WriteString(conn, "ping\n")
	if line := readLine(t, br); line != "echo: ping\n" {
		t.Fatalf("echo %q", line)
	}
	if got := h.upstream.last(t).Header.Get("X-Forwarded-User"); got != aliceID {
		t.Errorf("upgrade request carried user %q", got)
	}
}

func TestUpstreamFailures(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	tests := []struct {
		name       string
		configure  func(s *setup)
		path       string
		wantStatus int
		wantPage   string
	}{
		{"unreachable", func(s *setup) { s.cfg.Upstream.URL = deadURL }, "/v1/models", http.StatusBadGateway, "could not reach the service"},
		{"no headers in time", func(s *setup) { s.cfg.Upstream.ResponseHeaderTimeout = Duration(20 * time.Millisecond) }, "/slow",
			http.StatusGatewayTimeout, "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.configure)
			cookie := h.signedInDirect(aliceID)

			res, body := h.get(apiClient(), tt.path, withCookie(cookie, map[string]string{"Accept": "text/html"}))
			if res.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantPage) ||
				!strings.Contains(body, res.Header.Get("X-Request-Id")) {
				t.Fatalf("browser: %d\n%s", res.StatusCode, body)
			}
			res, body = h.get(apiClient(), tt.path, withCookie(cookie, nil))
			if res.StatusCode != tt.wantStatus || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("api: %d %s", res.StatusCode, body)
			}
		})
	}
}

func TestReservedPathsNeverProxied(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		target     string
		wantStatus int
	}{
		{"//teamgate/api/teams", http.StatusOK},
		{"/teamgate//api/teams", http.StatusOK},
		{"/%74eamgate/api/teams", http.StatusOK},
		{"/teamgate%2Fapi%2Fteams", http.StatusOK},
		{"/x/../teamgate/api/teams", http.StatusOK},
		{"/./teamgate/api/teams", http.StatusOK},
		{`/teamgate\api\teams`, http.StatusOK},
		{"/teamgate%5Capi%5Cteams", http.StatusOK},
		{"/Teamgate/api/teams", http.StatusNotFound},
		{"/TEAMGATE/API/TEAMS", http.StatusNotFound},
		{"/teamgate/nope", http.StatusNotFound},
		{"/teamgate", http.StatusNotFound},
		{"/OAuth2/start", http.StatusNotFound},
		{"/.well-known/teamgate/x", http.StatusNotFound},
		{"/.Well-Known/teamgate/x", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			res := rawGet(t, h, tt.target, "Authorization: Bearer "+testAdminToken)
			if res.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", res.StatusCode, tt.wantStatus)
			}
		})
	}
	if n := len(h.upstream.requests()); n != 0 {
		t.Errorf("the upstream received %d reserved requests: %v", n, h.upstream.requests())
	}
}

// rawGet sends target verbatim as the request target over a fresh
// connection (an http.Client would reinterpret "//host/path").
func rawGet(t *testing.T, h *harness, target string, headerLines ...string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n", target)
	for _, l := range headerLines {
		fmt.Fprintf(conn, "%s\r\n", l)
	}
	io.WriteString(conn, "\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func TestProxiedResponsesAreUpstreams(t *testing.T) {
	// The test client connects from 127.0.0.1: trusting it makes its
	// X-Request-Id count (an untrusted peer's is replaced: see trusted_test.go).
	h := newHarness(t, func(s *setup) { s.cfg.Server.TrustedProxies = []string{"127.0.0.1"} })
	cookie := h.signedInDirect(aliceID)

	res, body := h.get(apiClient(), "/empty404", withCookie(cookie, nil))
	if res.StatusCode != http.StatusNotFound || body != "" {
		t.Errorf("upstream's empty 404 became %d %q", res.StatusCode, body)
	}
	res, _ = h.get(apiClient(), "/v1/models", withCookie(cookie, map[string]string{"X-Request-Id": "client-trace-1"}))
	if res.Header.Get("Content-Security-Policy") != "" || res.Header.Get("Cache-Control") == "no-store" {
		t.Error("teamgate's page headers were added to a proxied response")
	}
	if ids := res.Header.Values("X-Request-Id"); len(ids) != 1 || ids[0] != "client-trace-1" {
		t.Errorf("X-Request-Id = %q, want the client's safe id once", ids)
	}
	if got := h.upstream.last(t).Header.Get("X-Request-Id"); got != "client-trace-1" {
		t.Errorf("upstream got X-Request-Id %q", got)
	}
	if got := h.upstream.last(t).Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}

	res, _ = h.get(apiClient(), "/v1/models", withCookie(cookie, map[string]string{"X-Request-Id": "bad id\twith junk"}))
	if id := res.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, "junk") {
		t.Errorf("unsafe inbound request id kept: %q", id)
	}
}

func TestOwnPagesCarrySecurityHeaders(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/teamgate/healthz", "/teamgate/signed-out", "/teamgate/nope", "/oauth2/start", "/v1/models"} {
		t.Run(path, func(t *testing.T) {
			res, _ := h.get(apiClient(), path, nil)
			if res.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			want := map[string]string{
				"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-store",
			}
			for k, v := range want {
				if res.Header.Get(k) != v {
					t.Errorf("%s = %q", k, res.Header.Get(k))
				}
			}
		})
	}
}

func TestStaticAndSignedOutPage(t *testing.T) {
	h := newHarness(t)
	res, body := h.get(apiClient(), "/teamgate/static/style.css", nil)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") || body == "" {
		t.Fatalf("stylesheet: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	res, body = h.get(apiClient(), "/teamgate/signed-out", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `href="/oauth2/start?rd=%2F"`) {
		t.Fatalf("signed-out: %d\n%s", res.StatusCode, body)
	}
}
