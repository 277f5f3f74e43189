package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
)

// Load and concurrency through the real HTTP flow. The full sizes of the
// issue (500 users on PostgreSQL, 200 on SQLite) run when TEAMGATE_LOAD=full;
// by default a tenth of them run, so that `go test -race ./...` stays fast
// in CI. The figures are logged (t.Logf), never asserted.

const envLoad = "TEAMGATE_LOAD"

// loadUsers is the number of distinct users signing in at once.
func loadUsers(t *testing.T, dialect string) int {
	full := map[string]int{store.DialectPostgres: 500, store.DialectSQLite: 200}[dialect]
	if os.Getenv(envLoad) == "full" {
		return full
	}
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	return full / 10
}

const (
	loadGroups        = 100
	loadGroupsPerUser = 10
)

// loadDirectory makes users users, each in loadGroupsPerUser of
// loadGroups groups (all assigned to the app, none a team yet), and
// returns the expected members of every group.
func loadDirectory(users int) (fakeentra.Directory, map[string][]string) {
	dir := fakeentra.Directory{}
	want := map[string][]string{}
	for g := 0; g < loadGroups; g++ {
		gid := fmt.Sprintf("load-group-%03d", g)
		want[gid] = nil // every assigned group is a team, members or not
		dir.Groups = append(dir.Groups, fakeentra.Group{ID: gid, DisplayName: fmt.Sprintf("Load group %03d", g)})
		dir.AppAssignments = append(dir.AppAssignments, gid)
	}
	for u := 0; u < users; u++ {
		uid := fmt.Sprintf("load-user-%04d", u)
		var groups []string
		for k := 0; k < loadGroupsPerUser; k++ {
			gid := fmt.Sprintf("load-group-%03d", (u*7+k*11)%loadGroups)
			if !slices.Contains(groups, gid) {
				groups = append(groups, gid)
				want[gid] = append(want[gid], uid)
			}
		}
		dir.Users = append(dir.Users, fakeentra.User{ID: uid, DisplayName: "Load " + uid,
			UPN: uid + "@example.com", MemberOf: groups})
	}
	return dir, want
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func TestLoadConcurrentSignIns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		n := loadUsers(t, st.Dialect())
		dir, want := loadDirectory(n)
		e := startE2E(t, st, e2eOptions{directory: dir, tweak: func(c *Config) {
			c.Entra.AppGroupsTTL = 5 * time.Minute // the production default: shared across sign-ins
			c.Log.Level = "info"
		}})
		start := make(chan struct{})
		latencies := make([]time.Duration, n)
		var errs atomic.Int64
		var wg sync.WaitGroup
		for u := 0; u < n; u++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				uid := fmt.Sprintf("load-user-%04d", u)
				b := e.browser()
				<-start
				t0 := time.Now()
				res, body := b.signIn(e.gw.URL, "/whoami", uid)
				latencies[u] = time.Since(t0)
				if res.StatusCode != http.StatusOK || !strings.Contains(body, "/whoami") {
					errs.Add(1)
					t.Errorf("%s: %d %.200s", uid, res.StatusCode, body)
				}
			}()
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		total := time.Since(t0)
		slices.Sort(latencies)
		t.Logf("LOAD %s: %d users signed in concurrently (%d groups, %d each) in %v: p50 %v, p99 %v, max %v, errors %d",
			st.Dialect(), n, loadGroups, loadGroupsPerUser, total.Round(time.Millisecond),
			percentile(latencies, 50).Round(time.Millisecond), percentile(latencies, 99).Round(time.Millisecond),
			latencies[n-1].Round(time.Millisecond), errs.Load())

		checkLoadTeams(t, st, want)

		// For comparison, the latency of one sign-in at a time (users
		// already synced, so the reconcile finds nothing to change).
		const seq = 20
		one := make([]time.Duration, seq)
		for i := range one {
			t0 := time.Now()
			if res, _ := e.browser().signIn(e.gw.URL, "/whoami", fmt.Sprintf("load-user-%04d", i)); res.StatusCode != http.StatusOK {
				t.Errorf("sequential sign-in %d: %d", i, res.StatusCode)
			}
			one[i] = time.Since(t0)
		}
		slices.Sort(one)
		t.Logf("LOAD %s: %d sign-ins one at a time: p50 %v, max %v", st.Dialect(), seq,
			percentile(one, 50).Round(time.Millisecond), one[seq-1].Round(time.Millisecond))
	})
}

// checkLoadTeams verifies exactly one team per group with the right alias
// and exactly the expected members.
func checkLoadTeams(t *testing.T, st store.Store, want map[string][]string) {
	t.Helper()
	ctx := t.Context()
	teams, err := st.Teams(ctx, store.TeamFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, tm := range teams {
		seen[tm.ID]++
		if want := "Load group " + strings.TrimPrefix(tm.ID, "load-group-"); tm.Alias != want {
			t.Errorf("team %s alias %q, want %q", tm.ID, tm.Alias, want)
		}
	}
	if len(teams) != len(want) {
		t.Errorf("%d teams, want %d", len(teams), len(want))
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("team %s appears %d times", id, c)
		}
	}
	ms, err := st.MembersOfTeams(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, m := range ms {
		got[m.TeamID] = append(got[m.TeamID], m.UserID)
	}
	for gid, users := range want {
		g := slices.Clone(got[gid])
		w := slices.Clone(users)
		sort.Strings(g)
		sort.Strings(w)
		if !slices.Equal(g, w) {
			t.Errorf("team %s has %d members, want %d (%v vs %v)", gid, len(g), len(w), g, w)
		}
	}
}

// One user signs in from ten tabs of one browser at once: every tab ends
// signed in, the user's teams are written once, and each sync is recorded.
func TestLoadOneUserTenTabs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		dir, want := loadDirectory(1)
		e := startE2E(t, st, e2eOptions{directory: dir})
		b := e.browser()
		const tabs = 10
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < tabs; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, body := b.signIn(e.gw.URL, fmt.Sprintf("/tab-%d", i), "load-user-0000")
				if res.StatusCode != http.StatusOK || res.Request.URL.Path != fmt.Sprintf("/tab-%d", i) {
					t.Errorf("tab %d: %d at %s: %.200s", i, res.StatusCode, res.Request.URL, body)
				}
			}()
		}
		close(start)
		wg.Wait()
		checkLoadTeams(t, st, want)
		evs, err := st.SyncEvents(t.Context(), store.EventFilter{UserID: "load-user-0000", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		ok := 0
		for _, ev := range evs {
			if ev.Outcome == "ok" {
				ok++
			}
		}
		if ok != tabs {
			t.Errorf("%d successful syncs recorded, want %d", ok, tabs)
		}
		if res, _ := b.api("GET", e.gw.URL+"/after"); res.StatusCode != http.StatusOK {
			t.Errorf("the browser is not signed in after its tabs: %d", res.StatusCode)
		}
	})
}

// One session is used by 200 concurrent clients while its user signs out:
// each sends requests back to back until it has sent one after the
// sign-out completed. No request fails with a 5xx, and every request sent
// after the sign-out has completed is refused.
func TestLoadRequestsDuringSignOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{tweak: func(c *Config) { c.Log.Level = "info" }})
		b := e.browser()
		b.signIn(e.gw.URL, "/", id("alice"))
		cookie := sessionCookieOf(t, e, b)

		const clients = 200
		var signedOut atomic.Bool
		var mu sync.Mutex
		counts := map[string]int{}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		t.Cleanup(client.CloseIdleConnections)
		// send reports whether the request was sent after the sign-out.
		send := func() bool {
			after := signedOut.Load()
			req := mustReq(t, "GET", e.gw.URL+"/v1/models", "Cookie", "teamgate_session="+cookie, "Accept", "application/json")
			res, err := client.Do(req)
			if err != nil {
				t.Errorf("request: %v", err)
				return true
			}
			res.Body.Close()
			mu.Lock()
			counts[fmt.Sprintf("%d after=%v", res.StatusCode, after)]++
			mu.Unlock()
			if res.StatusCode >= 500 {
				t.Errorf("a request failed with %d", res.StatusCode)
			}
			if after && res.StatusCode != http.StatusUnauthorized {
				t.Errorf("a request sent after the sign-out completed got %d, want 401", res.StatusCode)
			}
			return after
		}
		// The sign-out starts once every client has had two answers on
		// average, so that it lands among requests in flight.
		busy := make(chan struct{})
		var answered atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !send() {
					if answered.Add(1) == 2*clients {
						close(busy)
					}
				}
			}()
		}
		<-busy
		res, _ := do(t, b.noRedirects(), mustReq(t, "GET", e.gw.URL+"/oauth2/sign_out")) // POST needs the form token
		if res.StatusCode != http.StatusFound {
			t.Fatalf("sign-out: %d", res.StatusCode)
		}
		signedOut.Store(true)
		wg.Wait()
		t.Logf("%s: answers %v", st.Dialect(), counts)
	})
}
