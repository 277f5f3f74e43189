package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// With upstream.api_keys: session_required (LiteLLM trusting the identity
// headers, which then checks no key) a credential is no way around
// signing in: without a session the request is refused and never reaches
// the upstream; with one it carries the user's identity.
func TestAPIKeysSessionRequired(t *testing.T) {
	h := newHarness(t, func(s *setup) { s.cfg.Upstream.APIKeys = APIKeysSessionRequired })
	for _, cred := range []map[string]string{
		{"Authorization": "Bearer anything"},
		{"X-Api-Key": "sk-1234"},
		{"X-Litellm-Api-Key": "sk-1234"},
	} {
		before := len(h.upstream.requests())
		res, _ := h.do(apiClient(), http.MethodPost, "/v1/chat/completions", cred)
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%v without a session: %d, want 401", cred, res.StatusCode)
		}
		if n := len(h.upstream.requests()); n != before {
			t.Errorf("%v without a session reached the upstream", cred)
		}
	}
	cookie := h.signedIn("alice@example.com")
	res, _ := h.get(apiClient(), "/v1/models", withCookie(cookie, map[string]string{"Authorization": "Bearer anything"}))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("signed in with a key: %d", res.StatusCode)
	}
	if got := h.upstream.last(t).Header.Get(DefaultUserHeader); got != aliceID {
		t.Errorf("upstream %s = %q, want alice's id", DefaultUserHeader, got)
	}
}

// A credential header the request names in Connection is dropped by the
// proxy as hop-by-hop: it must not count as a credential, or the request
// would reach the upstream with neither a key nor an identity.
func TestAPIKeyNamedInConnectionIsNoCredential(t *testing.T) {
	h := newHarness(t)
	before := len(h.upstream.requests())
	for _, hdrs := range []map[string]string{
		{"X-Api-Key": "sk-1234", "Connection": "X-Api-Key"},
		{"Authorization": "Bearer sk-1234", "Connection": "keep-alive, authorization"},
	} {
		res, _ := h.get(apiClient(), "/v1/models", hdrs)
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%v: %d, want 401", hdrs, res.StatusCode)
		}
	}
	if n := len(h.upstream.requests()); n != before {
		t.Errorf("%d such requests reached the upstream", n-before)
	}
}

// An upgrade to anything but WebSocket (h2c above all) would turn the
// connection into a tunnel past teamgate after the upstream's 101: the
// upgrade is dropped and the request proxied as an ordinary one. CONNECT is
// refused.
func TestForeignUpgradeIsNotTunnelled(t *testing.T) {
	up := newUpgradeRecorder(t)
	h := newHarness(t, func(s *setup) { s.cfg.Upstream.URL = up.url })
	for _, upgrade := range []string{"h2c", "H2C", "websocket, h2c", "tls/1.2"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: %s\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n", upgrade)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("Upgrade: %s: %v", upgrade, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("Upgrade: %s: %d, want 200 (the upgrade ignored)", upgrade, res.StatusCode)
		}
		got := up.last(t)
		if got.Get("Upgrade") != "" || got.Get("Http2-Settings") != "" || strings.Contains(strings.ToLower(got.Get("Connection")), "upgrade") {
			t.Errorf("Upgrade: %s reached the upstream as an upgrade: %v", upgrade, got)
		}
	}
	res, _ := h.do(apiClient(), http.MethodConnect, h.url, map[string]string{"Authorization": "Bearer sk-1"})
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("CONNECT: %d, want 405", res.StatusCode)
	}
}

// A signed-in browser made to send a state-changing request by another
// origin (a sibling subdomain is same-site: SameSite=Lax lets the cookie
// through) is refused before the upstream; the same request from the
// page's own origin, or from a client that is not a browser, goes through.
func TestCrossOriginRequestWithSessionRefused(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedIn("alice@example.com")
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    int
	}{
		{"same-site sibling", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://evil.corp.example"}, http.StatusForbidden},
		{"cross-site", http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"Origin only, foreign", http.MethodDelete, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"same-origin", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": h.url}, http.StatusOK},
		{"not a browser", http.MethodPost, map[string]string{}, http.StatusOK},
		{"a cross-site GET (a link)", http.MethodGet, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusOK},
		{"a WebSocket opened by another site", http.MethodGet, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://evil.corp.example",
			"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.upstream.requests())
			res, _ := h.do(apiClient(), tt.method, "/key/generate", withCookie(cookie, tt.headers))
			if res.StatusCode != tt.want {
				t.Errorf("status %d, want %d", res.StatusCode, tt.want)
			}
			if reached := len(h.upstream.requests()) > before; reached != (tt.want == http.StatusOK) {
				t.Errorf("reached the upstream: %v", reached)
			}
		})
	}
}

// upgradeRecorder is an upstream that records headers and would accept any
// upgrade (as Hypercorn does h2c): a request reaching it as an upgrade gets
// 101.
type upgradeRecorder struct {
	url  string
	reqs chan http.Header
}

func newUpgradeRecorder(t *testing.T) *upgradeRecorder {
	u := &upgradeRecorder{reqs: make(chan http.Header, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.reqs <- r.Header.Clone()
		if r.Header.Get("Upgrade") != "" {
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", r.Header.Get("Upgrade"))
			w.WriteHeader(http.StatusSwitchingProtocols)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

func (u *upgradeRecorder) last(t *testing.T) http.Header {
	t.Helper()
	select {
	case h := <-u.reqs:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream received nothing")
		return nil
	}
}
