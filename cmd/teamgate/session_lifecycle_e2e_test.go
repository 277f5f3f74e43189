package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/store"
)

// The session protections of issue 6 end to end, through the real store
// adapters and the session config as YAML: signing a user out everywhere,
// rotating session.secret across a restart, and session.idle_timeout.
func TestSessionLifecycleEndToEnd(t *testing.T) {
	const (
		oldSecret = "session-secret-old-0123456789-abcdefghijklmnop"
		newSecret = "session-secret-new-0123456789-abcdefghijklmnop"
	)
	forEachBackend(t, func(t *testing.T, st store.Store) {
		// withSession sets the session section as an operator would write it.
		withSession := func(doc string) func(*Config) {
			return func(c *Config) {
				c.Session.Secret, c.Session.PreviousSecrets = "", nil
				if err := yaml.Unmarshal([]byte(doc), &c.Session); err != nil {
					t.Fatalf("session config %q: %v", doc, err)
				}
			}
		}
		// The probes below with a single secret run without identity
		// assertions: their signing key, stored sealed with the secrets,
		// must not be rotated away here (assertion tests cover that).
		alone := func(doc string) func(*Config) {
			return func(c *Config) {
				withSession(doc)(c)
				off := false
				c.Assertion.Enabled = &off
			}
		}
		models := func(e *e2e, b *browser) int {
			t.Helper()
			res, _ := b.api(http.MethodGet, e.gw.URL+"/v1/models")
			return res.StatusCode
		}
		alice, bob := id("alice"), id("bob")

		// Sign out everywhere: both of alice's sessions stop working at
		// once, bob's is untouched, and a restarted teamgate (nothing
		// cached) refuses them too.
		e1 := startE2E(t, st, e2eOptions{tweak: withSession("secret: " + oldSecret)})
		aliceA, aliceB, bobOld := e1.browser(), e1.browser(), e1.browser()
		for _, s := range []struct {
			b    *browser
			user string
		}{{aliceA, alice}, {aliceB, alice}, {bobOld, bob}} {
			s.b.signIn(e1.gw.URL, "/", s.user)
			if got := models(e1, s.b); got != http.StatusOK {
				t.Fatalf("%s before the revocation: %d", s.user, got)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, e1.gw.URL+"/teamgate/api/users/"+alice+"/revoke-sessions", nil)
		req.Header.Set("Authorization", "Bearer "+e1.adminTok)
		res, body := do(t, http.DefaultClient, req)
		var answer struct {
			UserID          string `json:"user_id"`
			SessionsRevoked int    `json:"sessions_revoked"`
		}
		if err := json.Unmarshal([]byte(body), &answer); res.StatusCode != http.StatusOK || err != nil ||
			answer.UserID != alice || answer.SessionsRevoked != 2 {
			t.Fatalf("revoke-sessions: %d %s", res.StatusCode, body)
		}
		for name, b := range map[string]*browser{"first": aliceA, "second": aliceB} {
			if got := models(e1, b); got != http.StatusUnauthorized {
				t.Errorf("alice's %s session after revoke-sessions: %d, want 401", name, got)
			}
		}
		if got := models(e1, bobOld); got != http.StatusOK {
			t.Errorf("bob's session after alice's revocation: %d", got)
		}
		e1.gw.Close()

		// Restart with the new secret first and the old one kept: the
		// cookie sealed with the old secret still works (alice's revoked
		// one still does not), and a new sign-in is sealed with the new
		// secret.
		e2 := startE2E(t, st, e2eOptions{tweak: withSession("secret: [" + newSecret + ", " + oldSecret + "]")})
		if got := models(e2, bobOld); got != http.StatusOK {
			t.Errorf("a cookie of the old secret after the rotation: %d, want 200", got)
		}
		if got := models(e2, aliceA); got != http.StatusUnauthorized {
			t.Errorf("a revoked session after the restart: %d, want 401", got)
		}
		bobNew := e2.browser()
		bobNew.signIn(e2.gw.URL, "/", bob)
		if got := models(e2, bobNew); got != http.StatusOK {
			t.Fatalf("a sign-in after the rotation: %d", got)
		}
		if sessionCookieOf(t, e2, bobNew) == sessionCookieOf(t, e2, bobOld) {
			t.Fatal("the new sign-in did not set a new cookie")
		}
		e2.gw.Close()
		// Which secret sealed which cookie: teamgate with only the new
		// secret takes the new cookie and not the old one; with only the
		// old secret, the other way round.
		for _, tc := range []struct {
			secret       string
			newOK, oldOK bool
		}{{newSecret, true, false}, {oldSecret, false, true}} {
			e := startE2E(t, st, e2eOptions{tweak: alone("secret: [" + tc.secret + "]")})
			for name, c := range map[string]struct {
				b  *browser
				ok bool
			}{"new": {bobNew, tc.newOK}, "old": {bobOld, tc.oldOK}} {
				want := http.StatusUnauthorized
				if c.ok {
					want = http.StatusOK
				}
				if got := models(e, c.b); got != want {
					t.Errorf("the %s cookie with only the %s secret: %d, want %d", name, map[bool]string{true: "new", false: "old"}[tc.secret == newSecret], got, want)
				}
			}
			e.gw.Close()
		}

		// session.idle_timeout 1m (the smallest allowed) on the gateway's
		// clock, which the test moves: requests keep the session alive,
		// idleness ends it. The cache keeps the entry (cache_ttl 1h), so
		// what decides is the recorded activity, not a re-read.
		var skew atomic.Int64
		advance := func(d time.Duration) { skew.Add(int64(d)) }
		e3 := startE2E(t, st, e2eOptions{
			tweak:        alone("secret: " + newSecret + "\nidle_timeout: 1m\ncache_ttl: 1h"),
			gatewayClock: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
		})
		if got := e3.app.cfg.Session.IdleTimeout; got != gateway.Duration(time.Minute) {
			t.Fatalf("session.idle_timeout parsed as %s", got)
		}
		idle := e3.browser()
		idle.signIn(e3.gw.URL, "/", bob)
		// The threshold is idle_timeout plus one touch interval (a tenth):
		// 66 s. Requests 50 s apart keep the session alive well past it.
		for i := 1; i <= 3; i++ {
			advance(50 * time.Second)
			if got := models(e3, idle); got != http.StatusOK {
				t.Fatalf("a request %d s after the previous one: %d, want 200", 50, got)
			}
		}
		advance(70 * time.Second)
		res, body = idle.api(http.MethodGet, e3.gw.URL+"/v1/models")
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("a request after 70 s idle: %d %s, want 401", res.StatusCode, body)
		}
		// The session is over, not just refused once.
		if got := models(e3, idle); got != http.StatusUnauthorized {
			t.Errorf("the next request: %d, want 401", got)
		}
		if !strings.Contains(body, "error") {
			t.Errorf("the 401 has no error body: %s", body)
		}
	})
}
