package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSignOut(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	h.signIn(c, "alice@example.com", "/")
	old := h.sessionCookie(c)
	if res, _ := h.get(apiClient(), "/v1/models", withCookie(old, nil)); res.StatusCode != http.StatusOK {
		t.Fatalf("signed-in request: %d", res.StatusCode)
	}

	res, _ := h.get(noFollow(c), "/oauth2/sign_out", nil)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("sign-out: %d", res.StatusCode)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != h.tenant.LogoutURL() {
		t.Errorf("sign-out went to %q, want Entra's logout %q", got, h.tenant.LogoutURL())
	}
	if got := loc.Query().Get("post_logout_redirect_uri"); got != h.url+"/teamgate/signed-out" {
		t.Errorf("post_logout_redirect_uri = %q", got)
	}
	if h.sessionCookie(c) != "" {
		t.Error("the cookie was not cleared")
	}
	if h.store.sessionCount() != 0 {
		t.Error("the session survived in the store")
	}
	// The old cookie is useless at once, although it was cached.
	res, _ = h.get(apiClient(), "/v1/models", withCookie(old, nil))
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old cookie after sign-out: %d", res.StatusCode)
	}

	// Following Entra's redirect ends on the signed-out page.
	res, body := h.get(c, loc.String(), nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "You are signed out") {
		t.Fatalf("signed-out page: %d\n%s", res.StatusCode, body)
	}
}

func TestSignOutPOSTAndWithoutSession(t *testing.T) {
	h := newHarness(t)
	res, _ := h.do(apiClient(), http.MethodPost, "/oauth2/sign_out", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST sign-out: %d", res.StatusCode)
	}
}

func TestSignOutKeepsCookieWhenStoreFails(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	h.signIn(c, "alice@example.com", "/")
	h.store.set(func(m *memStore) { m.deleteErr = errors.New("db down") })
	res, _ := h.get(noFollow(c), "/oauth2/sign_out", nil)
	if res.StatusCode != http.StatusServiceUnavailable || h.sessionCookie(c) == "" {
		t.Fatalf("status %d, cookie kept %v", res.StatusCode, h.sessionCookie(c) != "")
	}
}

func TestSignInRefreshesOtherSessionsOfTheUser(t *testing.T) {
	h := newHarness(t)
	laptop, phone := h.browser(), h.browser()
	h.signIn(laptop, "alice@example.com", "/")
	h.get(laptop, "/warm", nil) // cached with Alice's current teams

	newTeam := TeamRef{ID: "t-new", Alias: "AAA First"}
	h.syncer.set(func(s *fakeSyncer) { s.teams[aliceID] = []TeamRef{newTeam} })
	h.signIn(phone, "alice@example.com", "/")

	h.get(laptop, "/after", nil)
	if got := h.upstream.last(t).Header.Get("X-Litellm-Team-Id"); got != "t-new" {
		t.Errorf("laptop still acts for %q after the phone's sync", got)
	}
}

func TestConcurrentSignIns(t *testing.T) {
	h := newHarness(t)
	users := []string{"alice@example.com", "bob@example.com", "carol@example.com", "erin@example.com"}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := h.browser()
			res, err := c.Get(h.url + "/oauth2/start?rd=%2Fok&login_hint=" + url.QueryEscape(users[i%len(users)]))
			if err != nil {
				errs <- err
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("user %d: status %d", i, res.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := h.store.sessionCount(); n != 12 {
		t.Errorf("sessions = %d, want 12", n)
	}
}

func TestForgedSessionCookie(t *testing.T) {
	h := newHarness(t)
	res, _ := h.get(apiClient(), "/v1/models", withCookie("forged-value", nil))
	if res.StatusCode != http.StatusUnauthorized || h.store.lookupCount() != 0 {
		t.Fatalf("status %d, lookups %d", res.StatusCode, h.store.lookupCount())
	}
}

// signedInDirect creates a session for userID in the store without the
// Entra round trip (for tests where the upstream is broken) and returns
// its cookie value.
func (h *harness) signedInDirect(userID string) string {
	h.t.Helper()
	h.store.set(func(m *memStore) {
		m.principals[userID] = Principal{UserID: userID, Teams: []TeamRef{{ID: "t1", Alias: "One"}}}
	})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if err := h.gw.sessions.create(req.Context(), rec, req, userID, time.Hour); err != nil {
		h.t.Fatal(err)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == DefaultCookieName {
			return c.Value
		}
	}
	h.t.Fatal("no cookie set")
	return ""
}

func TestSessionCacheAvoidsDatabase(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedInDirect(aliceID)
	for i := 0; i < 5; i++ {
		if res, _ := h.get(apiClient(), "/v1/models", withCookie(cookie, nil)); res.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
	}
	if n := h.store.lookupCount(); n != 1 {
		t.Fatalf("lookups = %d for 5 requests, want 1", n)
	}
	h.clock.Advance(DefaultSessionCacheTTL)
	h.get(apiClient(), "/v1/models", withCookie(cookie, nil))
	if n := h.store.lookupCount(); n != 2 {
		t.Fatalf("lookups = %d after the cache TTL, want 2", n)
	}
}

func TestExpiredSessionRejected(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedInDirect(aliceID)
	// The database says the session ends in 10s, sooner than the cache TTL.
	h.store.set(func(m *memStore) {
		for id, s := range m.sessions {
			s.ExpiresAt = h.clock.Now().Add(10 * time.Second)
			m.sessions[id] = s
		}
	})
	if res, _ := h.get(apiClient(), "/v1/models", withCookie(cookie, nil)); res.StatusCode != http.StatusOK {
		t.Fatalf("before expiry: %d", res.StatusCode)
	}
	h.clock.Advance(10 * time.Second)
	if res, _ := h.get(apiClient(), "/v1/models", withCookie(cookie, nil)); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after expiry: %d", res.StatusCode)
	}
}

func TestSessionStoreDownIs503NotRedirect(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedInDirect(aliceID)
	h.store.set(func(m *memStore) { m.lookupErr = errors.New("connection refused") })
	res, body := h.get(apiClient(), "/ui/", withCookie(cookie, map[string]string{"Accept": "text/html"}))
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Location") != "" {
		t.Fatalf("browser: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if strings.Contains(body, "connection refused") {
		t.Error("the page leaks the cause")
	}
	res, body = h.get(apiClient(), "/v1/models", withCookie(cookie, nil))
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"type":"service_unavailable"`) {
		t.Fatalf("api: %d %s", res.StatusCode, body)
	}
}
