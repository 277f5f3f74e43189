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
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") == "" {
		t.Errorf("CONNECT: %d, Allow %q; want 405 with Allow", res.StatusCode, res.Header.Get("Allow"))
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
		{"an older browser: Origin matching Host, no Sec-Fetch-Site", http.MethodPost, map[string]string{"Origin": h.url}, http.StatusOK},
		{"behind a load balancer that rewrites Host: Origin is public_url", http.MethodPost, map[string]string{"Origin": h.url, "Host": "teamgate.internal:4180"}, http.StatusOK},
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

// A browser page on another origin calling LiteLLM with a key first sends a
// CORS preflight, which carries no credential and no cookie: it reaches the
// upstream (anonymously), whose CORS policy answers it, in either
// upstream.api_keys mode.
func TestCORSPreflightReachesUpstream(t *testing.T) {
	for _, mode := range []string{APIKeysPassthrough, APIKeysSessionRequired} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(s *setup) { s.cfg.Upstream.APIKeys = mode })
			before := len(h.upstream.requests())
			res, _ := h.do(apiClient(), http.MethodOptions, "/v1/chat/completions", map[string]string{
				"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
				"Access-Control-Request-Headers": "authorization, content-type", "X-Forwarded-User": "evil",
			})
			if res.StatusCode != http.StatusOK || len(h.upstream.requests()) != before+1 {
				t.Fatalf("preflight: %d, reached the upstream: %v", res.StatusCode, len(h.upstream.requests()) != before)
			}
			if seen := identityHeadersSeen(h, h.upstream.last(t)); len(seen) != 0 {
				t.Errorf("a preflight carried identity headers: %v", seen)
			}
			// An OPTIONS that is no preflight still needs a session or a key.
			if res, _ := h.do(apiClient(), http.MethodOptions, "/v1/chat/completions", nil); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("plain OPTIONS: %d, want 401", res.StatusCode)
			}
		})
	}
}

// The trusted origin taken from server.public_url is written as a browser
// writes Origin (lower case, no default port), or it would never match.
func TestBrowserOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://GW.Example":          "https://gw.example",
		"HTTPS://gw.example:443/":     "https://gw.example",
		"http://gw.example:80":        "http://gw.example",
		"http://gw.example:8080/base": "http://gw.example:8080",
		"https://[::1]:443":           "https://[::1]",
		"https://[::1]:8443":          "https://[::1]:8443",
	} {
		if got := originOf(in); got != want {
			t.Errorf("originOf(%q) = %q, want %q", in, got, want)
		}
	}
	g := newCSRFGuard(testSecret, "https://GW.Example:443")
	r := httptest.NewRequest(http.MethodPost, "https://teamgate.internal/v1/x", nil)
	r.Header.Set("Origin", "https://gw.example")
	if err := g.origin.Check(r); err != nil {
		t.Errorf("Origin https://gw.example behind a Host-rewriting balancer, public_url https://GW.Example:443: %v", err)
	}
}

// A public_url whose scheme is written in capitals is https all the same:
// teamgate's cookies are Secure.
func TestUppercaseHTTPSPublicURLMakesCookiesSecure(t *testing.T) {
	const public = "HTTPS://gw.example"
	h := newHarness(t, func(s *setup) {
		s.cfg.Server.PublicURL = public
		s.tenant.RedirectURIs = append(s.tenant.RedirectURIs, "https://gw.example/oauth2/callback")
	})
	res, _ := h.get(apiClient(), "/oauth2/start?rd=%2F", nil)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("start: %d", res.StatusCode)
	}
	cookies := res.Cookies()
	if len(cookies) == 0 {
		t.Fatal("no state cookie")
	}
	for _, c := range cookies {
		if !c.Secure {
			t.Errorf("cookie %s is not Secure with public_url %s", c.Name, public)
		}
	}
}
