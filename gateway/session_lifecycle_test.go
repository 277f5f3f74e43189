package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The memStore fake also records activity and revokes a user's sessions,
// as the real store adapter does.

func (m *memStore) TouchSession(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[id]; ok && at.After(s.LastSeenAt) {
		s.LastSeenAt = at
		m.sessions[id] = s
	}
	m.touches++
	if m.touched != nil {
		m.touched <- at
	}
	return nil
}

func (m *memStore) RevokeUserSessions(_ context.Context, userID string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, s := range m.sessions {
		if s.UserID == userID {
			delete(m.sessions, id)
			n++
		}
	}
	return n, nil
}

func (m *memStore) touchCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.touches
}

func withIdleTimeout(d time.Duration) func(*setup) {
	return func(s *setup) { s.cfg.Session.IdleTimeout = Duration(d) }
}

// status sends one API request with the cookie and returns its status.
func (h *harness) status(cookie string) int {
	h.t.Helper()
	res, _ := h.get(apiClient(), "/v1/models", withCookie(cookie, nil))
	return res.StatusCode
}

func TestIdleTimeout(t *testing.T) {
	const idle = 10 * time.Minute // touch interval: a tenth, 1m
	h := newHarness(t, withIdleTimeout(idle))
	touched := make(chan time.Time, 16)
	h.store.set(func(m *memStore) { m.touched = touched })
	cookie := h.signedInDirect(aliceID)
	start := h.clock.Now()

	// Activity keeps the session alive well past the idle timeout.
	for i := 1; i <= 3; i++ {
		h.clock.Advance(idle - time.Second)
		if got := h.status(cookie); got != http.StatusOK {
			t.Fatalf("request %d after %v of inactivity: %d", i, idle-time.Second, got)
		}
		if at := <-touched; !at.Equal(h.clock.Now()) {
			t.Fatalf("recorded activity at %v, want %v", at.Sub(start), h.clock.Now().Sub(start))
		}
	}
	// Many requests within one touch interval write once at most.
	before := h.store.touchCount()
	for i := 0; i < 50; i++ {
		h.clock.Advance(time.Second)
		if got := h.status(cookie); got != http.StatusOK {
			t.Fatalf("burst request %d: %d", i, got)
		}
	}
	if n := h.store.touchCount() - before; n > 1 {
		t.Errorf("%d activity writes for 50 requests within 50s, want at most 1 (interval 1m)", n)
	}
	for len(touched) > 0 {
		<-touched
	}

	// Idle past the timeout plus one interval: refused, from the cache and
	// from the store alike.
	h.clock.Advance(idle + time.Minute + time.Second)
	if got := h.status(cookie); got != http.StatusUnauthorized {
		t.Fatalf("after %v idle: %d, want 401", idle+time.Minute+time.Second, got)
	}
	h.gw.sessions.cache.deleteUser(aliceID)
	if got := h.status(cookie); got != http.StatusUnauthorized {
		t.Fatalf("after %v idle, read from the store: %d, want 401", idle+time.Minute+time.Second, got)
	}
}

// Another replica (an empty cache) honours activity recorded by this one.
func TestIdleTimeoutUsesRecordedActivity(t *testing.T) {
	const idle = 10 * time.Minute
	h := newHarness(t, withIdleTimeout(idle))
	touched := make(chan time.Time, 4)
	h.store.set(func(m *memStore) { m.touched = touched })
	cookie := h.signedInDirect(aliceID)
	h.clock.Advance(8 * time.Minute)
	if got := h.status(cookie); got != http.StatusOK {
		t.Fatal(got)
	}
	<-touched
	h.clock.Advance(8 * time.Minute) // 16 minutes after sign-in, 8 after the last request
	h.gw.sessions.cache.deleteUser(aliceID)
	if got := h.status(cookie); got != http.StatusOK {
		t.Fatalf("read back from the store 8m after the last request: %d, want 200", got)
	}
}

func TestIdleTimeoutNeedsAnActivityStore(t *testing.T) {
	var cfg Config
	cfg.Session.Secret = testSecret
	cfg.Session.IdleTimeout = Duration(time.Hour)
	_, err := New(t.Context(), cfg, OIDCConfig{Issuer: "http://127.0.0.1:1/t/v2.0", ClientID: "c", ClientSecret: "s"},
		Deps{Syncer: &fakeSyncer{}, Sessions: plainSessionStore{newMemStore()}})
	if err == nil || !strings.Contains(err.Error(), "session.idle_timeout") {
		t.Fatalf("New = %v, want an error naming session.idle_timeout", err)
	}
}

// plainSessionStore hides memStore's optional methods.
type plainSessionStore struct{ m *memStore }

func (p plainSessionStore) CreateSession(ctx context.Context, s SessionRecord) error {
	return p.m.CreateSession(ctx, s)
}
func (p plainSessionStore) LookupSession(ctx context.Context, id string, now time.Time) (SessionRecord, Principal, error) {
	return p.m.LookupSession(ctx, id, now)
}
func (p plainSessionStore) DeleteSession(ctx context.Context, id string) error {
	return p.m.DeleteSession(ctx, id)
}

func TestRevokeSessionsAdminAPI(t *testing.T) {
	h := newHarness(t)
	alice1, alice2, bob := h.signedInDirect(aliceID), h.signedInDirect(aliceID), h.signedInDirect(bobID)
	for _, c := range []string{alice1, alice2, bob} {
		if got := h.status(c); got != http.StatusOK { // now cached
			t.Fatalf("before: %d", got)
		}
	}
	path := "/teamgate/api/users/" + aliceID + "/revoke-sessions"
	tests := []struct {
		name, method, token string
		want                int
	}{
		{"no token", http.MethodPost, "", http.StatusUnauthorized},
		{"wrong token", http.MethodPost, "wrong-token-0123456789", http.StatusUnauthorized},
		{"GET is not allowed", http.MethodGet, testAdminToken, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.token != "" {
				hdr["Authorization"] = "Bearer " + tt.token
			}
			if res, _ := h.do(apiClient(), tt.method, path, hdr); res.StatusCode != tt.want {
				t.Errorf("%s: %d, want %d", tt.name, res.StatusCode, tt.want)
			}
			if got := h.status(alice1); got != http.StatusOK {
				t.Errorf("alice was signed out by a refused call: %d", got)
			}
		})
	}

	res, body := h.do(apiClient(), http.MethodPost, path, map[string]string{"Authorization": "Bearer " + testAdminToken})
	var ans revokeSessionsAnswer
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &ans) != nil || ans.SessionsRevoked != 2 || ans.UserID != aliceID {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	// At once on this replica, although both sessions were cached.
	for _, c := range []string{alice1, alice2} {
		if got := h.status(c); got != http.StatusUnauthorized {
			t.Errorf("alice's session after revoke: %d, want 401", got)
		}
	}
	if got := h.status(bob); got != http.StatusOK {
		t.Errorf("bob's session after revoking alice's: %d", got)
	}
	// Signing in again works (the clock has not moved).
	if got := h.status(h.signedInDirect(aliceID)); got != http.StatusOK {
		t.Errorf("new session after revoke: %d", got)
	}
	// Idempotent.
	res, body = h.do(apiClient(), http.MethodPost, "/teamgate/api/users/nobody/revoke-sessions", map[string]string{"Authorization": "Bearer " + testAdminToken})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"sessions_revoked":0`) {
		t.Errorf("revoke of an unknown user: %d %s", res.StatusCode, body)
	}
}

// gatedStore blocks the first LookupSession after it has read the session,
// until released: a lookup in flight while the user signs out.
type gatedStore struct {
	*memStore
	once    sync.Once
	read    chan struct{}
	release chan struct{}
}

func (g *gatedStore) LookupSession(ctx context.Context, id string, now time.Time) (SessionRecord, Principal, error) {
	rec, p, err := g.memStore.LookupSession(ctx, id, now)
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.read)
		<-g.release
	}
	return rec, p, err
}

// A request that arrives after sign-out has completed is refused even when
// a lookup of the session that started before the sign-out is still in
// flight: it must neither join that lookup nor find its result cached.
// (Before the fix it joined the lookup and was served.)
func TestSignOutDuringLookupInFlight(t *testing.T) {
	gs := &gatedStore{read: make(chan struct{}), release: make(chan struct{})}
	h := newHarness(t, func(s *setup) {
		gs.memStore = newMemStore()
		s.deps.Sessions = gs
	})
	h.store = gs.memStore
	h.syncer.store = gs.memStore
	cookie := h.signedInDirect(aliceID)

	first := make(chan int, 1)
	go func() { first <- h.statusNoFatal(cookie) }()
	<-gs.read // the lookup has read the still valid session

	if res, _ := h.get(noFollow(h.browser()), "/oauth2/sign_out", withCookie(cookie, nil)); res.StatusCode != http.StatusFound {
		t.Fatalf("sign-out: %d", res.StatusCode)
	}
	after := make(chan int, 1)
	go func() { after <- h.statusNoFatal(cookie) }()
	select {
	case got := <-after:
		if got != http.StatusUnauthorized {
			t.Errorf("request after sign-out: %d, want 401", got)
		}
	case <-time.After(10 * time.Second):
		close(gs.release)
		t.Fatalf("the request after sign-out waited for the stale lookup (then got %d)", <-after)
	}
	close(gs.release)
	if got := <-first; got != http.StatusOK {
		t.Errorf("the request concurrent with sign-out: %d, want 200", got)
	}
	if got := h.status(cookie); got != http.StatusUnauthorized {
		t.Errorf("after the stale lookup finished: %d, want 401 (it must not have been cached)", got)
	}
}

func (h *harness) statusNoFatal(cookie string) int {
	req, _ := http.NewRequest(http.MethodGet, h.url+"/v1/models", nil)
	req.Header.Set("Cookie", DefaultCookieName+"="+cookie)
	res, err := apiClient().Do(req)
	if err != nil {
		return -1
	}
	res.Body.Close()
	return res.StatusCode
}
