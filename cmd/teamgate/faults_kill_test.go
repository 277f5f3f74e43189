package main

import (
	"context"
	"database/sql"
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

// A teamgate process is SIGKILLed while 40 users sign in. After a restart
// on the same database no sync is half applied (each user is there with
// all their memberships and a sync event, or not at all), no team is
// duplicated, and the LiteLLM outbox left behind is delivered, once per
// operation.
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

	first := startKillable(t, config, addr)
	first.waitReady(t)
	var completed atomic.Int64
	killNow := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < users; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := (&e2e{t: t}).browser()
			b.client.Timeout = 20 * time.Second
			// Errors are expected once the process is killed: use the
			// client directly instead of the fatal helpers.
			res, err := b.client.Get(first.url + "/oauth2/start?rd=%2F&login_hint=" + fmt.Sprintf("kill-user-%02d%%40example.com", i))
			if err == nil {
				res.Body.Close()
			}
			if err == nil && res.StatusCode == http.StatusOK && completed.Add(1) == users/4 {
				close(killNow)
			}
		}()
	}
	select {
	case <-killNow:
	case <-time.After(60 * time.Second):
		t.Fatalf("not even a quarter of the sign-ins completed; log:\n%s", first.logs.String())
	}
	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown, no cleanup
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("killed after %d of %d sign-ins had completed", completed.Load(), users)

	st, err := store.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	synced := checkNoHalfAppliedSync(t, st, groupsOf)
	t.Logf("%d users fully synced, the others not at all", synced)

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
