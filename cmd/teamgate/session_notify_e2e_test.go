package main

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// notifyReplicas starts n teamgates on one database of backend whose session
// cache would keep a revoked session for 10 minutes, each with the session
// listener serve starts, listening.
func notifyReplicas(t *testing.T, backend string, n int) []*e2e {
	t.Helper()
	es, _ := notifyReplicasWatching(t, backend, n)
	return es
}

// notifyReplicasWatching is notifyReplicas, with each app's watcher.
func notifyReplicasWatching(t *testing.T, backend string, n int) ([]*e2e, []*store.SessionWatch) {
	t.Helper()
	stores := storetest.Replicas(t, backend, n)
	var es []*e2e
	var ws []*store.SessionWatch
	for _, st := range stores {
		e := startE2E(t, st, e2eOptions{tweak: func(c *Config) { c.Session.CacheTTL = gateway.Duration(10 * time.Minute) }})
		w := e.app.watchSessions()
		if w == nil {
			t.Fatalf("no session listener on %s", backend)
		}
		t.Cleanup(w.Close)
		select {
		case <-w.Ready():
		case <-time.After(30 * time.Second):
			t.Fatal("the session listener did not start within 30s")
		}
		es = append(es, e)
		ws = append(ws, w)
	}
	return es, ws
}

// modelsWith asks gwURL for /v1/models with the given cookies (no jar).
func modelsWith(t *testing.T, gwURL string, cookies []*http.Cookie) int {
	t.Helper()
	req := mustReq(t, "GET", gwURL+"/v1/models", "Accept", "application/json")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, _ := do(t, http.DefaultClient, req)
	return res.StatusCode
}

// refusedSoon polls (up to 10 s, far less than the 10-minute cache) until
// gwURL refuses the cookies.
func refusedSoon(t *testing.T, what, gwURL string, cookies []*http.Cookie) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code := modelsWith(t, gwURL, cookies)
		if code == http.StatusUnauthorized {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the other replica still answers %d after 10s (its cache_ttl is 10m)", what, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signedInOnBoth signs user in on a and checks that b serves (and so caches)
// the session; it returns the session cookies.
func signedInOnBoth(t *testing.T, a, b *e2e, user string) []*http.Cookie {
	t.Helper()
	br := a.browser()
	br.signIn(a.gw.URL, "/", user)
	u, _ := url.Parse(a.gw.URL)
	cookies := br.client.Jar.Cookies(u)
	if len(cookies) == 0 {
		t.Fatal("no session cookie after sign-in")
	}
	if code := modelsWith(t, b.gw.URL, cookies); code != http.StatusOK {
		t.Fatalf("the session on the other replica: %d, want 200", code)
	}
	return cookies
}

// A sign-out or "sign out everywhere" on one replica is refused by another
// at once (PostgreSQL NOTIFY), not after session.cache_ttl.
func TestTwoReplicasRevocationHeardAtOnce(t *testing.T) {
	es := notifyReplicas(t, store.DialectPostgres, 2)
	a, b := es[0], es[1]

	t.Run("sign-out", func(t *testing.T) {
		cookies := signedInOnBoth(t, a, b, id("bob"))
		req := mustReq(t, "GET", a.gw.URL+"/oauth2/sign_out", "Accept", "text/html")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if res, _ := do(t, c, req); res.StatusCode != http.StatusFound {
			t.Fatalf("sign-out on A: %d", res.StatusCode)
		}
		refusedSoon(t, "sign-out on A", b.gw.URL, cookies)
	})
	t.Run("membership removed by an admin", func(t *testing.T) { removalReachesCache(t, a, b) })
	t.Run("team renamed", func(t *testing.T) { renameReachesCache(t, a, b) })
	t.Run("revoke-sessions", func(t *testing.T) {
		cookies := signedInOnBoth(t, a, b, id("alice"))
		revokeSessions(t, a, a.gw.URL, id("alice"))
		refusedSoon(t, "revoke-sessions on A", b.gw.URL, cookies)
	})
}

// removalReachesCache: carol, signed in on a and cached on b (cache_ttl
// 10m), is removed from a team through a's store; b refuses her acting for
// it at once.
func removalReachesCache(t *testing.T, a, b *e2e) {
	t.Helper()
	cookies := signedInOnBoth(t, a, b, id("carol"))
	teams, err := a.store.UserTeams(t.Context(), id("carol"))
	if err != nil || len(teams) == 0 {
		t.Fatalf("carol's teams = %v, %v", teams, err)
	}
	team := teams[0].ID
	teamStatus := func() int {
		req := mustReq(t, "GET", b.gw.URL+"/v1/models", "Accept", "application/json", "X-LiteLLM-Team-Id", team)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		res, _ := do(t, http.DefaultClient, req)
		return res.StatusCode
	}
	if code := teamStatus(); code != http.StatusOK {
		t.Fatalf("B, acting for %s before the change: %d", team, code)
	}
	if err := a.store.RemoveMemberAsAdmin(t.Context(), team, id("carol"), "admin@example.com", time.Now()); err != nil {
		t.Fatal(err)
	}
	// B's cached session of carol (cache_ttl 10m) is read again at once:
	// acting for the team she left is refused.
	deadline := time.Now().Add(10 * time.Second)
	for code := teamStatus(); code != http.StatusForbidden; code = teamStatus() {
		if time.Now().After(deadline) {
			t.Fatalf("B still lets carol act for %s (%d) 10s after an admin removed her (cache_ttl 10m)", team, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// renameReachesCache: alice, signed in on a and cached on b (cache_ttl
// 10m), acts for the first of her teams by alias; a rename that a sync on a
// writes changes that on b at once.
func renameReachesCache(t *testing.T, a, b *e2e) {
	t.Helper()
	// alice's teams, ordered by alias: Data Science, Engineering; with
	// no default team chosen she acts for the first.
	cookies := signedInOnBoth(t, a, b, id("alice"))
	actingOnB := func() string {
		if code := modelsWith(t, b.gw.URL, cookies); code != http.StatusOK {
			t.Fatalf("alice on B: %d", code)
		}
		return b.upstream.last(t).Header.Get("X-LiteLLM-Team-Id")
	}
	if got := actingOnB(); got != id("data-science") {
		t.Fatalf("alice acts for %s on B, want Data Science (%s)", got, id("data-science"))
	}
	// Engineering is renamed in Entra; bob, newly in it, signs in on A,
	// whose sync renames the team. B's cached session of alice (cache_ttl
	// 10m) still orders her teams by the old alias unless told.
	a.tenant.AddMember(id("engineering"), id("bob"))
	a.tenant.RenameGroup(id("engineering"), "AI Engineering")
	a.browser().signIn(a.gw.URL, "/", id("bob"))
	deadline := time.Now().Add(10 * time.Second)
	for got := actingOnB(); got != id("engineering"); got = actingOnB() {
		if time.Now().After(deadline) {
			t.Fatalf("B: alice still acts for %s 10s after Engineering became AI Engineering (cache_ttl 10m)", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// On SQLite (one process) the changes a background sync, another user's
// sign-in or the store make reach the process's own session cache at once
// too, not after session.cache_ttl: here "A" and "B" are one teamgate.
func TestOneProcessHearsChangesOnSQLite(t *testing.T) {
	es := notifyReplicas(t, store.DialectSQLite, 1)
	t.Run("membership removed by an admin", func(t *testing.T) { removalReachesCache(t, es[0], es[0]) })
	t.Run("team renamed", func(t *testing.T) { renameReachesCache(t, es[0], es[0]) })
}

// A replica whose listener lost its connection forgets every cached session
// when it reconnects: revocations may have been missed meanwhile.
func TestTwoReplicasListenerReconnectPurges(t *testing.T) {
	if os.Getenv(storetest.EnvPostgresURL) == "" {
		storetest.PostgresURL(t) // skips, or fails with TEAMGATE_REQUIRE_POSTGRES
	}
	es, ws := notifyReplicasWatching(t, store.DialectPostgres, 2)
	a, b := es[0], es[1]
	cookies := signedInOnBoth(t, a, b, id("carol"))

	// A deletion nobody hears (expiry is not a revocation; the gateways'
	// clocks still see the session live): B keeps serving its cached copy.
	if n, err := a.store.DeleteExpiredSessions(t.Context(), time.Now().Add(365*24*time.Hour)); err != nil || n == 0 {
		t.Fatalf("DeleteExpiredSessions = %d, %v", n, err)
	}
	if code := modelsWith(t, b.gw.URL, cookies); code != http.StatusOK {
		t.Fatalf("B before the reconnect: %d, want 200 from its cache", code)
	}
	// Cut B's listener connection, found by its own application_name (no
	// other test's listener is touched).
	if killed := storetest.KillSessionListener(t, ws[1]); killed != 1 {
		t.Fatalf("terminated %d listener backends named %q, want 1", killed, ws[1].ApplicationName())
	}
	refusedSoon(t, "after the listener reconnected", b.gw.URL, cookies)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.logs.String(), "session listener reconnected") {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect logged:\n%s", b.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
