package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
)

func TestSignInEndToEnd(t *testing.T) {
	h := newHarness(t)
	c := h.browser()

	res, body := h.signIn(c, "alice@example.com", "/ui/?page=2")
	if res.StatusCode != http.StatusOK || body != "hello from upstream /ui/" {
		t.Fatalf("after sign-in: %d %q", res.StatusCode, body)
	}
	got := h.upstream.last(t)
	want := map[string]string{
		"X-Forwarded-User":               aliceID,
		"X-Forwarded-Email":              "alice@example.com",
		"X-Forwarded-Preferred-Username": "alice@example.com",
		"X-Forwarded-Groups":             fakeentra.DemoID("data-science") + "," + fakeentra.DemoID("engineering"),
		"X-Litellm-Team-Id":              fakeentra.DemoID("data-science"),
	}
	for k, v := range want {
		if got.Header.Get(k) != v {
			t.Errorf("upstream %s = %q, want %q", k, got.Header.Get(k), v)
		}
	}

	// The syncer saw the verified identity.
	h.syncer.mu.Lock()
	id := h.syncer.calls[0]
	h.syncer.mu.Unlock()
	if id.UserID != aliceID || id.TenantID != testTenantID || id.UPN != "alice@example.com" ||
		id.Email != "alice@example.com" || id.DisplayName != "Alice Adams" {
		t.Errorf("synced identity = %+v", id)
	}

	// The store holds a hash, the cookie an encrypted opaque value.
	cookie := h.sessionCookie(c)
	if cookie == "" {
		t.Fatal("no session cookie")
	}
	h.store.mu.Lock()
	for sid, rec := range h.store.sessions {
		if len(sid) != 64 || rec.UserID != aliceID || !rec.ExpiresAt.Equal(rec.CreatedAt.Add(DefaultSessionLifetime)) {
			t.Errorf("stored session %q = %+v", sid, rec)
		}
		if strings.Contains(cookie, sid) {
			t.Error("the cookie contains the stored session key")
		}
	}
	h.store.mu.Unlock()
	if h.store.sessionCount() != 1 {
		t.Errorf("sessions = %d, want 1", h.store.sessionCount())
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	cb := h.callbackURL(c, "alice@example.com", "/")
	res, _ := h.get(noFollow(c), cb, nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/" {
		t.Fatalf("callback: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	var session, state *http.Cookie
	for _, ck := range res.Cookies() {
		switch {
		case ck.Name == DefaultCookieName:
			session = ck
		case strings.HasPrefix(ck.Name, DefaultCookieName+"_state_"):
			state = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" ||
		session.MaxAge != int(DefaultSessionLifetime/time.Second) || session.Secure {
		t.Errorf("session cookie = %+v", session)
	}
	if state == nil || state.MaxAge >= 0 || state.Path != "/oauth2/" {
		t.Errorf("state cookie not deleted after use: %+v", state)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("callback response is cacheable")
	}
}

func TestStartRedirectsToEntraWithPKCE(t *testing.T) {
	h := newHarness(t)
	res, _ := h.get(noFollow(h.browser()), "/oauth2/start?rd=%2F%2Fevil.example", nil)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("status %d", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	checks := map[string]string{
		"client_id":             testClientID,
		"response_type":         "code",
		"redirect_uri":          h.url + "/oauth2/callback",
		"scope":                 "openid profile email",
		"code_challenge_method": "S256",
	}
	for k, v := range checks {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if len(q.Get("code_challenge")) != 43 || len(q.Get("state")) != 43 || len(q.Get("nonce")) != 43 {
		t.Errorf("challenge/state/nonce malformed: %v", q)
	}
	var state *http.Cookie
	for _, ck := range res.Cookies() {
		if strings.HasPrefix(ck.Name, DefaultCookieName+"_state_") {
			state = ck
		}
	}
	if state == nil || !state.HttpOnly || state.SameSite != http.SameSiteLaxMode || state.Path != "/oauth2/" ||
		state.MaxAge != 600 {
		t.Fatalf("state cookie = %+v", state)
	}
	for _, secret := range []string{q.Get("state"), q.Get("nonce")} {
		if strings.Contains(state.Value, secret) {
			t.Error("the state cookie is readable")
		}
	}
}

func TestOpenRedirectRefusedThroughFlow(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	cb := h.callbackURL(c, "alice@example.com", "https://evil.example/")
	res, _ := h.get(noFollow(c), cb, nil)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || loc != "/" {
		t.Fatalf("callback redirected to %q (%d), want /", loc, res.StatusCode)
	}
}

func TestCallbackRefusesBadState(t *testing.T) {
	tests := []struct {
		name string
		// callback turns a genuine callback URL into the request made.
		callback func(t *testing.T, h *harness, c *http.Client) string
	}{
		{"no state", func(t *testing.T, h *harness, c *http.Client) string {
			return dropParam(h.callbackURL(c, "alice@example.com", "/"), "state")
		}},
		{"forged state", func(t *testing.T, h *harness, c *http.Client) string {
			return setParam(h.callbackURL(c, "alice@example.com", "/"), "state", strings.Repeat("A", 43))
		}},
		{"state from another browser", func(t *testing.T, h *harness, c *http.Client) string {
			h.callbackURL(c, "alice@example.com", "/") // c has its own attempt
			return h.callbackURL(h.browser(), "alice@example.com", "/")
		}},
		{"expired attempt", func(t *testing.T, h *harness, c *http.Client) string {
			cb := h.callbackURL(c, "alice@example.com", "/")
			h.clock.Advance(stateLifetime + time.Second)
			return cb
		}},
		{"no code", func(t *testing.T, h *harness, c *http.Client) string {
			return dropParam(h.callbackURL(c, "alice@example.com", "/"), "code")
		}},
		{"code of another attempt (PKCE mismatch)", func(t *testing.T, h *harness, c *http.Client) string {
			first := h.callbackURL(c, "alice@example.com", "/")
			second := h.callbackURL(c, "alice@example.com", "/")
			return setParam(second, "code", param(first, "code"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			c := h.browser()
			target := tt.callback(t, h, c)
			res, body := h.get(c, target, nil)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", res.StatusCode, body)
			}
			if !strings.Contains(body, "Sign-in link expired or reused") || !strings.Contains(body, res.Header.Get("X-Request-Id")) {
				t.Errorf("page lacks explanation or request id:\n%s", body)
			}
			if h.store.sessionCount() != 0 || h.syncer.callCount() != 0 || h.sessionCookie(c) != "" {
				t.Error("a failed callback created a session or ran a sync")
			}
		})
	}
}

func TestCallbackReplayRefused(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	cb := h.callbackURL(c, "alice@example.com", "/")
	if res, _ := h.get(noFollow(c), cb, nil); res.StatusCode != http.StatusFound {
		t.Fatalf("first callback: %d", res.StatusCode)
	}
	res, body := h.get(noFollow(c), cb, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired or reused") {
		t.Fatalf("replayed callback: %d %s", res.StatusCode, body)
	}

	// A redeemed code with a fresh, valid state: Entra says invalid_grant.
	fresh := h.callbackURL(c, "alice@example.com", "/")
	res, _ = h.get(noFollow(c), setParam(fresh, "code", param(cb, "code")), nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed code: %d", res.StatusCode)
	}
	if n := h.store.sessionCount(); n != 1 {
		t.Errorf("sessions = %d, want only the first", n)
	}
}

func TestCallbackEntraErrors(t *testing.T) {
	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantText   []string
		notText    []string
	}{
		{"not assigned", "error=access_denied&error_description=" + url.QueryEscape("AADSTS50105: blocked. <b>call 555</b>"),
			http.StatusForbidden, []string{"not assigned to this application", "AADSTS50105"}, []string{"call 555", "<b>"}},
		{"consent", "error=consent_required&error_description=AADSTS65001%3A+consent", http.StatusForbidden,
			[]string{"admin consent", "AADSTS65001"}, nil},
		{"unavailable", "error=temporarily_unavailable", http.StatusServiceUnavailable,
			[]string{"Microsoft Entra is unavailable", "Sign in again"}, []string{"Error code"}},
		{"cancelled", "error=access_denied&error_description=the+user+cancelled", http.StatusForbidden,
			[]string{"Sign-in was denied"}, []string{"cancelled</p>\n<p class=\"code\""}},
		{"unknown", "error=weird_thing&error_description=" + url.QueryEscape("<script>x</script>"), http.StatusBadGateway,
			[]string{"could not sign you in"}, []string{"<script>x", "weird_thing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			res, body := h.get(h.browser(), "/oauth2/callback?"+tt.query, nil)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.wantStatus)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tt.notText {
				if strings.Contains(body, s) {
					t.Errorf("page contains %q:\n%s", s, body)
				}
			}
			if h.store.sessionCount() != 0 {
				t.Error("session created")
			}
		})
	}
}

func TestCallbackEntraErrorThroughFakeTenant(t *testing.T) {
	h := newHarness(t, func(s *setup) { s.tenant.AssignmentRequired = true })
	res, body := h.signIn(h.browser(), "dave@example.com", "/")
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "AADSTS50105") {
		t.Fatalf("unassigned user: %d\n%s", res.StatusCode, body)
	}
	if h.syncer.callCount() != 0 || h.store.sessionCount() != 0 {
		t.Error("an unassigned user was synced or given a session")
	}
}

func TestCallbackAnswersJSONToAPIClients(t *testing.T) {
	h := newHarness(t)
	res, body := h.get(apiClient(), "/oauth2/callback?state=x&code=y", nil)
	if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, `"type":"bad_request"`) || !strings.Contains(body, `"request_id":"`) {
		t.Errorf("body = %s", body)
	}
}

func TestSyncFailureCreatesNoSession(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantText   string
		wantLog    string
	}{
		{"graph unavailable", &SyncError{Kind: SyncUnavailable, Err: errors.New("graph 503")}, http.StatusServiceUnavailable,
			"Microsoft Entra is unavailable", "graph 503"},
		{"missing permission", &SyncError{Kind: SyncPermission, Permission: "GroupMember.Read.All", Err: errors.New("403")},
			http.StatusBadGateway, "Contact your administrator", "GroupMember.Read.All"},
		{"database", &SyncError{Kind: SyncInternal, Err: errors.New("disk full")}, http.StatusServiceUnavailable,
			"could not record your sign-in", "disk full"},
		{"untyped error", fmt.Errorf("wrapped: %w", errors.New("boom")), http.StatusServiceUnavailable,
			"could not record your sign-in", "boom"},
		{"wrapped typed error", fmt.Errorf("sync: %w", &SyncError{Kind: SyncPermission, Permission: "Application.Read.All", Err: errors.New("403")}),
			http.StatusBadGateway, "lacks a permission", "Application.Read.All"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.syncer.set(func(s *fakeSyncer) { s.err = tt.err })
			c := h.browser()
			res, body := h.signIn(c, "alice@example.com", "/")
			if res.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantText) {
				t.Fatalf("status %d, want %d; page:\n%s", res.StatusCode, tt.wantStatus, body)
			}
			if h.store.sessionCount() != 0 || h.sessionCookie(c) != "" {
				t.Error("a failed sync left a session")
			}
			if !strings.Contains(h.logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q", tt.wantLog)
			}
			if strings.Contains(body, tt.wantLog) {
				t.Errorf("page leaks the cause %q", tt.wantLog)
			}
		})
	}
}

func TestSessionStoreFailureAtSignIn(t *testing.T) {
	h := newHarness(t)
	h.store.set(func(m *memStore) { m.createErr = errors.New("db down") })
	c := h.browser()
	res, _ := h.signIn(c, "alice@example.com", "/")
	if res.StatusCode != http.StatusServiceUnavailable || h.sessionCookie(c) != "" {
		t.Fatalf("status %d, cookie %q", res.StatusCode, h.sessionCookie(c))
	}
}

func TestSignInLeavesNoSecretsInLogs(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	cb := h.callbackURL(c, "alice@example.com", "/")
	h.get(c, cb, nil)
	h.get(c, "/v1/models", map[string]string{"Authorization": "Bearer sk-secret-key"})
	logs := h.logs.String()
	for _, secret := range []string{param(cb, "code"), param(cb, "state"), h.sessionCookie(c), "sk-secret-key", testSecret} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret (%.12s…)", secret)
		}
	}
	if !strings.Contains(logs, `"msg":"request"`) || !strings.Contains(logs, `"path":"/oauth2/callback"`) {
		t.Errorf("no access lines:\n%s", logs)
	}
}

func param(rawURL, key string) string {
	u, _ := url.Parse(rawURL)
	return u.Query().Get(key)
}

func setParam(rawURL, key, value string) string {
	u, _ := url.Parse(rawURL)
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func dropParam(rawURL, key string) string {
	u, _ := url.Parse(rawURL)
	q := u.Query()
	q.Del(key)
	u.RawQuery = q.Encode()
	return u.String()
}
