package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRevalidator answers re-checks as the test says and, like the real
// adapter, records the outcome in the session store: a successful check
// moves the user's ValidatedAt, an ended one marks the user's sessions.
type fakeRevalidator struct {
	store *memStore
	now   func() time.Time
	calls chan string // receives the user id when a check has finished

	mu     sync.Mutex
	reason string // non-empty: end the sessions with it
	err    error
}

func (f *fakeRevalidator) set(reason string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reason, f.err = reason, err
}

func (f *fakeRevalidator) Revalidate(_ context.Context, userID string) (bool, string, error) {
	f.mu.Lock()
	reason, err := f.reason, f.err
	f.mu.Unlock()
	defer func() { f.calls <- userID }()
	if err != nil {
		return false, "", err
	}
	f.store.set(func(m *memStore) {
		if reason != "" {
			for id, s := range m.sessions {
				if s.UserID == userID {
					s.EndedReason = reason
					m.sessions[id] = s
				}
			}
			return
		}
		p := m.principals[userID]
		p.ValidatedAt = f.now()
		m.principals[userID] = p
	})
	return reason != "", reason, nil
}

func withRevalidation(after, grace time.Duration, rv *fakeRevalidator) func(*setup) {
	return func(s *setup) {
		s.cfg.Session.RevalidateAfter = Duration(after)
		s.cfg.Session.RevalidateGrace = Duration(grace)
		s.deps.Revalidator = rv
	}
}

// signedInLong is signedInDirect with a session that outlives the test's
// clock jumps.
func (h *harness) signedInLong(userID string) string {
	h.t.Helper()
	cookie := h.signedInDirect(userID)
	h.store.set(func(m *memStore) {
		for id, s := range m.sessions {
			s.ExpiresAt = s.CreatedAt.Add(24 * time.Hour)
			m.sessions[id] = s
		}
	})
	return cookie
}

// idle reports whether no check is running.
func (v *revalidation) idle() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.running) == 0
}

// checked waits for the re-check the fake has just answered to finish.
func (h *harness) checked(rv *fakeRevalidator) string {
	h.t.Helper()
	id := <-rv.calls
	for !h.gw.sessions.reval.idle() {
		time.Sleep(time.Millisecond)
	}
	return id
}

// pageFor sends a browser request with the cookie and returns status and body.
func (h *harness) pageFor(cookie string) (int, string) {
	h.t.Helper()
	res, body := h.get(http.DefaultClient, "/ui/", withCookie(cookie, map[string]string{"Accept": "text/html"}))
	return res.StatusCode, body
}

func TestRevalidationRunsOffTheRequestPath(t *testing.T) {
	rv := &fakeRevalidator{calls: make(chan string, 8)}
	h := newHarness(t, withRevalidation(time.Hour, 4*time.Hour, rv))
	rv.store, rv.now = h.store, h.clock.Now
	cookie := h.signedInLong(aliceID)

	// Not due yet: no check.
	h.clock.Advance(59 * time.Minute)
	if got := h.status(cookie); got != http.StatusOK {
		t.Fatalf("before revalidate_after: %d", got)
	}
	select {
	case id := <-rv.calls:
		t.Fatalf("re-check of %s before revalidate_after", id)
	default:
	}

	// Due: the request is served at once and the check runs beside it.
	h.clock.Advance(2 * time.Minute)
	if got := h.status(cookie); got != http.StatusOK {
		t.Fatalf("request that starts the re-check: %d", got)
	}
	if id := h.checked(rv); id != aliceID {
		t.Fatalf("re-checked %q", id)
	}
	// The outcome is read back: validated now, so no further check.
	if got := h.status(cookie); got != http.StatusOK {
		t.Fatalf("after the re-check: %d", got)
	}
	select {
	case <-rv.calls:
		t.Fatal("a second re-check right after a successful one")
	case <-time.After(50 * time.Millisecond):
	}

	// The account is disabled: the next check ends the session, and the
	// user is told why instead of being sent round the sign-in loop.
	rv.set(SessionEndedDisabled, nil)
	h.clock.Advance(61 * time.Minute)
	if got := h.status(cookie); got != http.StatusOK {
		t.Fatalf("request that starts the ending re-check: %d", got)
	}
	h.checked(rv)
	status, body := h.pageFor(cookie)
	if status != http.StatusForbidden || !strings.Contains(body, "disabled in Microsoft Entra ID") {
		t.Fatalf("after the session was ended: %d\n%s", status, body)
	}
	if got := h.status(cookie); got != http.StatusForbidden {
		t.Errorf("API request after the session was ended: %d, want 403", got)
	}
}

func TestRevalidationGraphOutageGrace(t *testing.T) {
	rv := &fakeRevalidator{calls: make(chan string, 64)}
	h := newHarness(t, withRevalidation(time.Hour, 2*time.Hour, rv))
	rv.store, rv.now = h.store, h.clock.Now
	cookie := h.signedInLong(aliceID)
	rv.set("", errors.New("graph unavailable"))

	// Within the grace the session keeps working; failed checks are retried
	// at most every revalidateRetry.
	h.clock.Advance(90 * time.Minute)
	if got := h.status(cookie); got != http.StatusOK {
		t.Fatalf("within the grace: %d", got)
	}
	h.checked(rv)
	if got := h.status(cookie); got != http.StatusOK {
		t.Fatalf("within the grace, second request: %d", got)
	}
	select {
	case <-rv.calls:
		t.Fatal("retried at once after a failure")
	case <-time.After(50 * time.Millisecond):
	}

	// Past the grace: refused with a page, not signed out.
	h.clock.Advance(91 * time.Minute)
	status, body := h.pageFor(cookie)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "re-check your account") {
		t.Fatalf("past the grace: %d\n%s", status, body)
	}
	h.checked(rv)
	// Graph is back: the next check succeeds and the session works again.
	rv.set("", nil)
	h.clock.Advance(revalidateRetry + time.Second)
	h.status(cookie) // starts the check
	h.checked(rv)
	if got := h.status(cookie); got != http.StatusOK {
		t.Fatalf("after Graph came back: %d", got)
	}
}

func TestRevalidationConfig(t *testing.T) {
	for _, tc := range []struct {
		after, grace time.Duration
		want         string
	}{
		{30 * time.Second, 0, "session.revalidate_after: must be 0 (off) or between 1m and session.lifetime"},
		{13 * time.Hour, 0, "session.revalidate_after: must be 0 (off) or between 1m and session.lifetime"},
		{time.Hour, 0, "session.revalidate_grace: must be at least 1m while session.revalidate_after is on"},
		{time.Hour, -time.Second, "session.revalidate_grace: must be at least 1m"},
	} {
		var c Config
		c.Session.Secret = testSecret
		c.Session.RevalidateAfter, c.Session.RevalidateGrace = Duration(tc.after), Duration(tc.grace)
		c.ApplyDefaults()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("after %v grace %v: %v, want %q", tc.after, tc.grace, err, tc.want)
		}
	}
	// On without a Revalidator is a wiring error.
	_, err := New(t.Context(), Config{Session: SessionConfig{Secret: testSecret, RevalidateAfter: Duration(time.Hour), RevalidateGrace: Duration(time.Hour)}},
		OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: testClientID, ClientSecret: "x"},
		Deps{Syncer: &fakeSyncer{}, Sessions: newMemStore()})
	if err == nil || !strings.Contains(err.Error(), "Revalidator") {
		t.Errorf("New without a Revalidator: %v", err)
	}
}
