package gateway

import (
	"errors"
	"net/http"
	"testing"
)

// The session store goes down: a session this replica has cached keeps
// working until its cache entry expires (session.cache_ttl), then gets a
// clear 503, as a page or JSON, and never a redirect to sign in again (which
// would loop, as sign-in needs the database too). When the store is back the
// same cookie works again.
func TestCachedSessionSurvivesStoreOutageUntilTTL(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedInDirect(aliceID)
	if got := h.status(cookie); got != http.StatusOK {
		t.Fatalf("before: %d", got)
	}
	h.store.set(func(m *memStore) { m.lookupErr = errors.New("connection refused") })

	h.clock.Advance(DefaultSessionCacheTTL - 1)
	if got := h.status(cookie); got != http.StatusOK {
		t.Errorf("within cache_ttl of the last lookup: %d, want 200 from the cache", got)
	}
	h.clock.Advance(2)
	for _, accept := range []string{"text/html", "application/json"} {
		res, _ := h.get(apiClient(), "/ui/", withCookie(cookie, map[string]string{"Accept": accept}))
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Location") != "" {
			t.Errorf("%s after cache_ttl: %d to %q, want 503 without a redirect", accept, res.StatusCode, res.Header.Get("Location"))
		}
	}
	h.store.set(func(m *memStore) { m.lookupErr = nil })
	if got := h.status(cookie); got != http.StatusOK {
		t.Errorf("store back: %d", got)
	}
}
