package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// Database faults on a real PostgreSQL, reached through a TCP relay the test
// can cut (the database is down: connections drop, new ones are refused)
// and restore (it is back), without restarting teamgate.

// dbRelay forwards TCP connections to PostgreSQL until cut.
type dbRelay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newDBRelay(t *testing.T, target string) *dbRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &dbRelay{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go r.serve()
	t.Cleanup(func() { ln.Close(); r.cut() })
	return r
}

func (r *dbRelay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		down := r.down
		r.mu.Unlock()
		if down {
			c.Close() // the database is down: the connection is dropped at once
			continue
		}
		go r.pipe(c)
	}
}

func (r *dbRelay) pipe(c net.Conn) {
	up, err := net.Dial("tcp", r.target)
	if err != nil {
		c.Close()
		return
	}
	r.mu.Lock()
	r.conns[c], r.conns[up] = true, true
	r.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// cut drops every connection and refuses new ones.
func (r *dbRelay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = true
	for c := range r.conns {
		c.Close()
	}
	r.conns = map[net.Conn]bool{}
}

func (r *dbRelay) restore() {
	r.mu.Lock()
	r.down = false
	r.mu.Unlock()
}

// relayedPostgres opens a migrated store on a fresh schema through a relay.
// appName tags its connections in pg_stat_activity.
func relayedPostgres(t *testing.T) (store.Store, *dbRelay, string) {
	t.Helper()
	st, relay, appName, _ := relayedPostgresURL(t)
	return st, relay, appName
}

// relayedPostgresURL is relayedPostgres that also returns the schema's
// direct URL (no relay), for an administrator's connection.
func relayedPostgresURL(t *testing.T) (store.Store, *dbRelay, string, string) {
	t.Helper()
	raw := storetest.PostgresURL(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	relay := newDBRelay(t, u.Host)
	u.Host = relay.ln.Addr().String()
	var b [6]byte
	rand.Read(b[:])
	appName := "teamgate_fault_" + hex.EncodeToString(b[:])
	q := u.Query()
	q.Set("application_name", appName)
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st, relay, appName, raw
}

// The database goes down in the middle of a sign-in, while its reconcile
// has written the user, the teams and the memberships inside its
// transaction and waits to insert its sync event (held there by a lock,
// see faults_lock_test.go): the user gets a clean 503 page, nothing of the
// sign-in is left in the database, and once the database is back the same
// sign-in works without restarting teamgate.
func TestFaultDatabaseDownDuringSignIn(t *testing.T) {
	st, relay, appName, direct := relayedPostgresURL(t)
	e := startE2E(t, st, e2eOptions{directory: faultDirectory()})
	before := dbSnapshot(t, st)

	b := e.browser()
	type outcome struct {
		status int
		body   string
	}
	lock := lockTable(t, direct, "sync_events")
	done := make(chan outcome, 1)
	go func() {
		res, body := b.signIn(e.gw.URL, "/landing", "u00")
		done <- outcome{res.StatusCode, body}
	}()
	waitForWaitingInserts(t, direct, appName, 1, e.logs.String)
	relay.cut()
	lock.release()
	got := <-done
	t.Logf("answer: %d %q", got.status, pageTitle(got.body))
	if got.status != http.StatusServiceUnavailable || !strings.Contains(strings.ToLower(got.body), "try again") {
		t.Errorf("sign-in with the database down: %d %.300s", got.status, got.body)
	}
	if res, _ := b.api("GET", e.gw.URL+"/v1/models"); res.StatusCode == http.StatusOK {
		t.Error("a session works although its sign-in failed")
	}

	relay.restore()
	if _, err := st.User(t.Context(), "u00"); err == nil {
		t.Error("the user was written by the failed sign-in")
	}
	if after := dbSnapshot(t, st); after != before {
		t.Errorf("the failed sign-in changed teams or memberships:\nbefore %s\nafter  %s", before, after)
	}
	if status, _, signedIn, stored := signInOutcome(t, e, st, "u00"); status != http.StatusOK || !signedIn || !stored {
		t.Errorf("sign-in once the database is back: %d signedIn=%v stored=%v", status, signedIn, stored)
	}
}

// The database goes down while users proxy: sessions this replica has
// cached keep working; a session it must look up gets a clear 503 (never a
// redirect to sign in again, which would loop); when the database is back
// everything works without restarting teamgate.
func TestFaultDatabaseDownDuringProxying(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cacheTTL   time.Duration
		cachedWork bool
	}{
		{"cached sessions", time.Hour, true},
		{"no cache", time.Nanosecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, relay, _ := relayedPostgres(t)
			e := startE2E(t, st, e2eOptions{directory: faultDirectory(), tweak: func(c *Config) {
				c.Session.CacheTTL = gateway.Duration(tc.cacheTTL)
			}})
			cached, uncached := e.browser(), e.browser()
			cached.signIn(e.gw.URL, "/landing", "u00")
			// Signed in, but never proxied through before the outage.
			uncached.signIn(e.gw.URL, "/oauth2/start?rd=%2Fteamgate%2Fhealthz", "u01")
			if res, _ := cached.api("GET", e.gw.URL+"/v1/models"); res.StatusCode != http.StatusOK {
				t.Fatalf("before: %d", res.StatusCode)
			}

			relay.cut()
			res, body := cached.api("GET", e.gw.URL+"/v1/models")
			t.Logf("session seen before the outage: %d", res.StatusCode)
			if tc.cachedWork && res.StatusCode != http.StatusOK {
				t.Errorf("a cached session failed during the outage: %d %s", res.StatusCode, body)
			}
			if !tc.cachedWork && res.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("an uncached session during the outage: %d, want 503", res.StatusCode)
			}
			// A session this replica has not cached: 503 as JSON and as a
			// page, never a redirect.
			res, body = uncached.api("GET", e.gw.URL+"/v1/models")
			if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "service_unavailable") {
				t.Errorf("api during the outage: %d %s", res.StatusCode, body)
			}
			res, body = do(t, uncached.noRedirects(), mustReq(t, "GET", e.gw.URL+"/ui/", "Accept", "text/html"))
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Location") != "" {
				t.Errorf("browser during the outage: %d to %q", res.StatusCode, res.Header.Get("Location"))
			}
			t.Logf("uncached session during the outage: %d %q", res.StatusCode, pageTitle(body))
			if res, _ := http.Get(e.gw.URL + "/teamgate/readyz"); res.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("readyz during the outage: %d, want 503", res.StatusCode)
			}

			relay.restore()
			for name, b := range map[string]*browser{"cached": cached, "uncached": uncached} {
				if res, _ := b.api("GET", e.gw.URL+"/v1/models"); res.StatusCode != http.StatusOK {
					t.Errorf("%s session once the database is back: %d", name, res.StatusCode)
				}
			}
		})
	}
}

// PostgreSQL restarts (every connection of teamgate's pool is terminated
// by the server): the pool recovers without restarting teamgate; requests
// made while the dead connections are found out fail cleanly, if at all.
func TestFaultDatabaseRestarted(t *testing.T) {
	st, _, appName := relayedPostgres(t)
	e := startE2E(t, st, e2eOptions{directory: faultDirectory(), tweak: func(c *Config) {
		c.Session.CacheTTL = gateway.Duration(time.Nanosecond) // every request reads the database
	}})
	bs := make([]*browser, 4)
	for i := range bs {
		bs[i] = e.browser()
		bs[i].signIn(e.gw.URL, "/landing", "u0"+string(rune('0'+i)))
	}
	admin, err := sql.Open("postgres", os.Getenv(storetest.EnvPostgresURL))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for round := 1; round <= 3; round++ {
		// Fill the pool with several connections first.
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); bs[i%len(bs)].api("GET", e.gw.URL+"/v1/models") }()
		}
		wg.Wait()
		var killed int
		err := admin.QueryRowContext(t.Context(),
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", appName).Scan(&killed)
		if err != nil {
			t.Fatal(err)
		}
		statuses := map[int]int{}
		for i := 0; i < 20; i++ {
			res, _ := bs[i%len(bs)].api("GET", e.gw.URL+"/v1/models")
			statuses[res.StatusCode]++
			if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("round %d: %d", round, res.StatusCode)
			}
		}
		t.Logf("round %d: %d connections terminated; answers %v", round, killed, statuses)
		if killed == 0 {
			t.Errorf("round %d: no connection of teamgate's was found to terminate", round)
		}
		res, _ := bs[0].api("GET", e.gw.URL+"/v1/models")
		if res.StatusCode != http.StatusOK {
			t.Errorf("round %d: not recovered after 20 requests: %d", round, res.StatusCode)
		}
		if status, _, signedIn, _ := signInOutcome(t, e, st, "u1"+string(rune('0'+round))); status != http.StatusOK || !signedIn {
			t.Errorf("round %d: sign-in after the restart: %d", round, status)
		}
	}
}
