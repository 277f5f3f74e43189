package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/litellmfake"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// startKillable runs `teamgate serve` as a child process (see TestMain)
// that the test may SIGKILL; unlike startProcess it expects no clean exit.
func startKillable(t *testing.T, config, addr string) *process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &process{url: "http://" + addr, logs: &syncBuffer{}}
	p.cmd = exec.Command(os.Args[0], "serve", "--config", path)
	p.cmd.Env = append(os.Environ(), "TEAMGATE_TEST_RUN_MAIN=1")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-done })
	return p
}

// A teamgate process is SIGKILLed while users sign in, with at least one
// reconcile stopped in the middle of its transaction (its user, teams and
// memberships written, its sync event waiting on a lock: faults_lock_test.go).
// After a restart on the same database no sync is half applied (each user
// is there with all their memberships and a sync event, or not at all), no
// team is duplicated, and the LiteLLM outbox left behind is delivered, once
// per operation (member_add once per team and user).
func TestFaultKilledDuringSignIns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts teamgate processes")
	}
	dbURL := storetest.PostgresURL(t)
	const users = 40
	dir := fakeentra.Directory{
		Groups:         []fakeentra.Group{{ID: "kill-a", DisplayName: "Kill A"}, {ID: "kill-b", DisplayName: "Kill B"}, {ID: "kill-c", DisplayName: "Kill C"}},
		AppAssignments: []string{"kill-a", "kill-b", "kill-c"},
	}
	groupsOf := map[string][]string{}
	for i := 0; i < users; i++ {
		uid := fmt.Sprintf("kill-user-%02d", i)
		groupsOf[uid] = []string{"kill-a", []string{"kill-b", "kill-c"}[i%2]}
		dir.Users = append(dir.Users, fakeentra.User{ID: uid, DisplayName: uid, UPN: uid + "@example.com", MemberOf: groupsOf[uid]})
	}
	tn, err := fakeentra.New(fakeentra.Config{TenantID: "tid", ClientID: "cid", ClientSecret: "kill-secret",
		ServicePrincipalID: "sp", Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	entra := httptest.NewServer(tn)
	defer entra.Close()
	tn.SetBaseURL(entra.URL)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	llm := litellmfake.New("sk-kill-master-key-0123456789")
	llmSrv := httptest.NewServer(llm)
	defer llmSrv.Close()
	// LiteLLM is down while the first process runs, so operations pile up
	// in the outbox (and deliveries fail at once, holding no lease long).
	llm.SetDown(true)

	addr := freePort(t)
	config := fmt.Sprintf(`server:
  listen: %q
  public_url: "http://%s"
upstream:
  url: %q
entra:
  tenant_id: tid
  client_id: cid
  client_secret: kill-secret
  authority_host: %q
  graph_url: %q
  service_principal_id: sp
database:
  url: %q
session:
  secret: %q
litellm:
  url: %q
  master_key: sk-kill-master-key-0123456789
admin:
  api_token: kill-admin-token-0123
log:
  level: info
`, addr, addr, up.URL, tn.AuthorityHost(), tn.GraphURL(), dbURL, strings.Repeat("k", 40), llmSrv.URL)

	// The child's connections carry an application name, so that the test
	// can see in pg_stat_activity which of its reconciles wait.
	var nonce [6]byte
	rand.Read(nonce[:])
	appName := "teamgate_kill_" + hex.EncodeToString(nonce[:])
	childConfig := strings.Replace(config, fmt.Sprintf("url: %q", dbURL),
		fmt.Sprintf("url: %q", dbURL+"&application_name="+appName), 1)
	if !strings.Contains(dbURL, "?") {
		t.Fatalf("the test database URL has no query to extend: %s", store.RedactURL(dbURL))
	}

	first := startKillable(t, childConfig, addr)
	first.waitReady(t)
	signIn := func(i int) bool {
		b := (&e2e{t: t}).browser()
		b.client.Timeout = 20 * time.Second
		// Errors are expected once the process is killed: use the client
		// directly instead of the fatal helpers.
		res, err := b.client.Get(first.url + "/oauth2/start?rd=%2F&login_hint=" + fmt.Sprintf("kill-user-%02d%%40example.com", i))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}
	// A quarter of the users sign in completely first.
	var completed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < users/4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if signIn(i) {
				completed.Add(1)
			}
		}()
	}
	wg.Wait()
	if completed.Load() != users/4 {
		t.Fatalf("%d of the first %d sign-ins completed; log:\n%s", completed.Load(), users/4, first.logs.String())
	}
	// The others start while sync_events is locked, so that their
	// reconciles stop at their last statement with everything else
	// written; teamgate is killed while they wait.
	lock := lockTable(t, dbURL, "sync_events")
	var late atomic.Int64
	for i := users / 4; i < users; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if signIn(i) {
				late.Add(1)
			}
		}()
	}
	waiting := waitForWaitingInserts(t, dbURL, appName, 1, first.logs.String)
	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown, no cleanup
		t.Fatal(err)
	}
	wg.Wait()
	lock.release()
	t.Logf("killed after %d of %d sign-ins had completed, with %d reconciles in the middle of their transaction",
		completed.Load()+late.Load(), users, waiting)
	if late.Load() != 0 {
		t.Errorf("%d sign-ins completed while their sync event could not be written", late.Load())
	}

	st, err := store.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	synced := checkNoHalfAppliedSync(t, st, groupsOf)
	t.Logf("%d users fully synced, the others not at all", synced)
	// Exactly the sign-ins that completed before the lock: the interrupted
	// ones left nothing behind.
	if synced != users/4 {
		t.Errorf("%d users synced, want the %d whose sign-ins completed before the kill", synced, users/4)
	}

	// Operations the killed process had claimed stay leased to it for at
	// most provision.DefaultLease (2m). Unless TEAMGATE_LOAD=full, the
	// test lets that time pass by ending the leases in the database.
	leased := sqlInt(t, dbURL, "SELECT count(*) FROM litellm_outbox WHERE status = 'pending' AND lease_until > now()")
	if late := sqlInt(t, dbURL, "SELECT count(*) FROM litellm_outbox WHERE lease_until > now() + interval '2 minutes 5 seconds'"); late != 0 {
		t.Errorf("%d operations leased for longer than the 2m lease", late)
	}
	t.Logf("outbox after the kill: %d pending, %d of them leased to the killed process",
		sqlInt(t, dbURL, "SELECT count(*) FROM litellm_outbox WHERE status = 'pending'"), leased)
	if os.Getenv(envLoad) != "full" {
		sqlInt(t, dbURL, "WITH u AS (UPDATE litellm_outbox SET lease_until = now() WHERE lease_until > now() RETURNING 1) SELECT count(*) FROM u")
	}

	// The restarted teamgate (LiteLLM is back) delivers the outbox.
	llm.SetDown(false)
	second := startKillable(t, config, addr)
	second.waitReady(t)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		pending := sqlInt(t, dbURL, "SELECT count(*) FROM litellm_outbox WHERE status = 'pending'")
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d operations still pending 3 minutes after the restart; log:\n%s", pending, second.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for uid, groups := range groupsOf {
		if _, err := st.User(t.Context(), uid); err != nil {
			continue // never synced
		}
		if _, ok := llm.User(uid); !ok {
			t.Errorf("%s is synced but not in LiteLLM", uid)
		}
		for _, g := range groups {
			tm, ok := llm.Team(g)
			if !ok || !slices.ContainsFunc(tm.Members, func(m litellmfake.Member) bool { return m.UserID == uid }) {
				t.Errorf("%s is not a member of %s in LiteLLM", uid, g)
			}
		}
	}
	created := map[string]int{}
	for _, r := range llm.Requests() {
		if r.Status == http.StatusOK {
			created[r.Path]++
		}
	}
	if n := created["/team/new"]; n != 3 {
		t.Errorf("/team/new succeeded %d times, want 3", n)
	}
	if n := created["/user/new"]; n != synced {
		t.Errorf("/user/new succeeded %d times for %d synced users", n, synced)
	}
	// Each membership of a synced user is delivered exactly once (a second
	// delivery would be answered 400, already a member), and nothing of
	// the interrupted sign-ins is.
	adds := memberAdds(t, llm.Requests())
	for uid, groups := range groupsOf {
		_, err := st.User(t.Context(), uid)
		for _, g := range groups {
			want := []int{http.StatusOK}
			if err != nil {
				want = nil
			}
			if got := adds[[2]string{g, uid}]; !slices.Equal(got, want) {
				t.Errorf("member_add of %s to %s answered %v, want %v", uid, g, got, want)
			}
			delete(adds, [2]string{g, uid})
		}
	}
	for k, v := range adds {
		t.Errorf("member_add of %s to %s (%v) matches no Entra membership", k[1], k[0], v)
	}
	t.Logf("LiteLLM calls after the restart: %v", created)
}

// checkNoHalfAppliedSync checks that every user in the database has exactly
// their Entra memberships and a successful sync event, that nobody else has
// memberships, and that each team exists once; it returns the users synced.
func checkNoHalfAppliedSync(t *testing.T, st store.Store, groupsOf map[string][]string) int {
	t.Helper()
	ctx := t.Context()
	ms, err := st.MembersOfTeams(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, m := range ms {
		got[m.UserID] = append(got[m.UserID], m.TeamID)
	}
	synced := 0
	for uid, want := range groupsOf {
		_, uerr := st.User(ctx, uid)
		evs, err := st.SyncEvents(ctx, store.EventFilter{UserID: uid})
		if err != nil {
			t.Fatal(err)
		}
		ok := slices.ContainsFunc(evs, func(e store.SyncEvent) bool { return e.Outcome == "ok" })
		g := slices.Clone(got[uid])
		slices.Sort(g)
		w := slices.Clone(want)
		slices.Sort(w)
		switch {
		case uerr == nil && ok && slices.Equal(g, w):
			synced++
		case uerr != nil && !ok && len(g) == 0:
		default:
			t.Errorf("%s half synced: user row %v, ok event %v, memberships %v (want %v)", uid, uerr == nil, ok, g, w)
		}
	}
	teams, err := st.Teams(ctx, store.TeamFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if synced > 0 && len(teams) != 3 {
		t.Errorf("%d teams after %d syncs, want 3", len(teams), synced)
	}
	return synced
}

// memberAdds maps each (team, user) to the statuses of the /team/member_add
// requests LiteLLM answered for it (dropped requests, status 0, left out).
func memberAdds(t *testing.T, reqs []litellmfake.Request) map[[2]string][]int {
	t.Helper()
	adds := map[[2]string][]int{}
	for _, r := range reqs {
		if r.Path != "/team/member_add" || r.Status == 0 {
			continue
		}
		var body struct {
			TeamID string          `json:"team_id"`
			Member json.RawMessage `json:"member"`
		}
		var members []struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("member_add body %s: %v", r.Body, err)
		}
		if err := json.Unmarshal(body.Member, &members); err != nil {
			members = members[:0]
			var one struct {
				UserID string `json:"user_id"`
			}
			if err := json.Unmarshal(body.Member, &one); err != nil {
				t.Fatalf("member_add body %s: %v", r.Body, err)
			}
			members = append(members, one)
		}
		for _, m := range members {
			k := [2]string{body.TeamID, m.UserID}
			adds[k] = append(adds[k], r.Status)
		}
	}
	return adds
}

// sqlInt runs a query returning one integer, straight on the database.
func sqlInt(t *testing.T, dbURL, query string) int {
	t.Helper()
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.QueryRowContext(ctx, query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
