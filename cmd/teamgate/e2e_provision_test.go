package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/litellmfake"
	"github.com/teamgate/teamgate/sync/store"
)

// End-to-end LiteLLM provisioning: real sign-ins through the browser flow,
// the fake LiteLLM's management API over HTTP, and the app's own outbox
// worker, driven by Drain with a clock the test moves (no sleeps).

const e2eMasterKey = "sk-e2e-master-key-0123456789"

// offsetClock is real time plus an offset the test advances, so operations
// enqueued by the reconcile (real time) become due when the test says.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// provisionDir: alice in Engineering and Data Science, bob in Engineering;
// Operations is assigned too (a team without members), Marketing is not.
func provisionDir() fakeentra.Directory {
	return fakeentra.Directory{
		Users: []fakeentra.User{
			{ID: "alice-oid", DisplayName: "Alice", Mail: "Alice@Example.com", UPN: "alice@example.com", MemberOf: []string{"eng", "ds", "mkt"}},
			{ID: "bob-oid", DisplayName: "Bob", Mail: "bob@example.com", UPN: "bob@example.com", MemberOf: []string{"eng"}},
		},
		Groups: []fakeentra.Group{
			{ID: "eng", DisplayName: "Engineering"}, {ID: "ds", DisplayName: "Data Science"},
			{ID: "ops", DisplayName: "Operations"}, {ID: "mkt", DisplayName: "Marketing"},
		},
		AppAssignments: []string{"eng", "ds", "ops"},
	}
}

// provisionE2E is an e2e run with provisioning into a fake LiteLLM.
type provisionE2E struct {
	*e2e
	litellm *litellmfake.Server
	clock   *offsetClock
	opts    e2eOptions
}

func startProvisionE2E(t *testing.T, st store.Store, tweak func(*Config)) *provisionE2E {
	t.Helper()
	fake := litellmfake.New(e2eMasterKey)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	p := &provisionE2E{litellm: fake, clock: &offsetClock{}}
	p.opts = e2eOptions{directory: provisionDir(), provisionClock: p.clock.now, tweak: func(c *Config) {
		c.LiteLLM.URL, c.LiteLLM.MasterKey = srv.URL, e2eMasterKey
		if tweak != nil {
			tweak(c)
		}
	}}
	p.e2e = startE2E(t, st, p.opts)
	if p.app.prov == nil {
		t.Fatal("provisioning is off although litellm.master_key is set")
	}
	return p
}

// drain delivers everything due with this app's worker.
func (p *provisionE2E) drain() int {
	p.t.Helper()
	n, err := p.app.prov.worker.Drain(context.Background())
	if err != nil {
		p.t.Fatalf("Drain: %v", err)
	}
	return n
}

func (p *provisionE2E) signIn(userID string) {
	p.t.Helper()
	res, body := p.browser().signIn(p.gw.URL, "/", userID)
	if res.StatusCode != http.StatusOK || res.Request.URL.Host != strings.TrimPrefix(p.gw.URL, "http://") {
		p.t.Fatalf("sign-in of %s ended with %d at %s: %.300s", userID, res.StatusCode, res.Request.URL, body)
	}
}

// calls counts the fake's answered requests per path and status, e.g.
// "/team/new 200": 3.
func (p *provisionE2E) calls() map[string]int {
	out := map[string]int{}
	for _, r := range p.litellm.Requests() {
		out[fmt.Sprintf("%s %d", r.Path, r.Status)]++
	}
	return out
}

func (p *provisionE2E) team(id string) litellmfake.Team {
	p.t.Helper()
	tm, ok := p.litellm.Team(id)
	if !ok {
		p.t.Fatalf("team %s is not in LiteLLM", id)
	}
	return tm
}

// members lists a team's members as user:role, the master key's automatic
// admin entry included.
func members(tm litellmfake.Team) []string {
	var out []string
	for _, m := range tm.Members {
		out = append(out, m.UserID+":"+m.Role)
	}
	sort.Strings(out)
	return out
}

func (p *provisionE2E) outbox(status string) []gateway.AdminOutboxOp {
	p.t.Helper()
	var ops []gateway.AdminOutboxOp
	if code := p.admin("/teamgate/api/outbox?status="+status, &ops); code != http.StatusOK {
		p.t.Fatalf("GET outbox: %d", code)
	}
	return ops
}

func (p *provisionE2E) adminPost(path string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.gw.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+p.adminTok)
	res, body := do(p.t, http.DefaultClient, req)
	return res.StatusCode, body
}

func wantCalls(t *testing.T, what string, got map[string]int, want map[string]int) {
	t.Helper()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d × %q, want %d (all calls: %v)", what, got[k], k, n, got)
		}
	}
}

// The first sign-in provisions every assigned team with
// default_team_params, the user with default_internal_user_params and the
// memberships; later sign-ins propagate a rename, a leave, an unassignment
// (block) and a re-assignment (unblock), each exactly once.
func TestE2EProvisioning(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		p := startProvisionE2E(t, st, func(c *Config) {
			c.LiteLLMSettings.DefaultInternalUserParams.BudgetDuration = "7d"
			c.LiteLLMSettings.DefaultInternalUserParams.Models = []string{"gpt-4o-mini"}
		})
		p.signIn("alice-oid")
		if n := p.drain(); n != 6 {
			t.Errorf("delivered %d operations, want 6 (user, 3 teams, 2 memberships)", n)
		}
		u, ok := p.litellm.User("alice-oid")
		if !ok || u.Email != "alice@example.com" || u.SSOUserID != "alice-oid" || u.Role != "internal_user" ||
			u.BudgetDuration != "7d" || !slices.Equal(u.Models, []string{"gpt-4o-mini"}) || u.KeysMinted != 0 {
			t.Errorf("LiteLLM user = %+v, %v", u, ok)
		}
		for id, alias := range map[string]string{"eng": "Engineering", "ds": "Data Science", "ops": "Operations"} {
			tm := p.team(id)
			if tm.Alias != alias || tm.MaxBudget == nil || *tm.MaxBudget != 100 || tm.BudgetDuration != "30d" ||
				!slices.Equal(tm.Models, []string{"gpt-3.5-turbo"}) || tm.Blocked {
				t.Errorf("LiteLLM team %s = %+v", id, tm)
			}
		}
		if _, ok := p.litellm.Team("mkt"); ok {
			t.Error("Marketing (not assigned to the app) reached LiteLLM")
		}
		admin := litellmfake.DefaultUserID + ":admin"
		equal := func(what string, got, want []string) {
			t.Helper()
			if !slices.Equal(got, want) {
				t.Errorf("%s = %v, want %v", what, got, want)
			}
		}
		equal("eng members", members(p.team("eng")), []string{"alice-oid:user", admin})
		equal("ops members", members(p.team("ops")), []string{admin})
		wantCalls(t, "first sign-in", p.calls(), map[string]int{"/user/new 200": 1, "/team/new 200": 3, "/team/member_add 200": 2})

		// A second sign-in without changes sends nothing.
		before := len(p.litellm.Requests())
		p.signIn("alice-oid")
		if n := p.drain(); n != 0 || len(p.litellm.Requests()) != before {
			t.Errorf("an unchanged sign-in delivered %d operations", n)
		}

		// Rename and leave.
		p.tenant.RenameGroup("eng", "Engineering Org")
		p.tenant.RemoveMember("ds", "alice-oid")
		p.signIn("alice-oid")
		p.drain()
		if tm := p.team("eng"); tm.Alias != "Engineering Org" || tm.MaxBudget == nil || *tm.MaxBudget != 100 {
			t.Errorf("after the rename: %+v (only the alias may change)", tm)
		}
		equal("ds members after alice left", members(p.team("ds")), []string{admin})

		// Unassign Operations: blocked at the next sign-in by anyone; assign it again: unblocked.
		p.tenant.UnassignFromApp("ops")
		p.signIn("bob-oid")
		p.drain()
		if !p.team("ops").Blocked {
			t.Error("ops is not blocked after its group was unassigned")
		}
		p.tenant.AssignToApp("ops")
		p.signIn("bob-oid")
		p.drain()
		if p.team("ops").Blocked {
			t.Error("ops is still blocked after its group was assigned again")
		}
		equal("eng members", members(p.team("eng")), []string{"alice-oid:user", "bob-oid:user", admin})
		wantCalls(t, "in all", p.calls(), map[string]int{
			"/user/new 200": 2, "/team/new 200": 3, "/team/update 200": 1, "/team/member_add 200": 3,
			"/team/member_delete 200": 1, "/team/block 200": 1, "/team/unblock 200": 1,
		})
		if ops := p.outbox("pending"); len(ops) != 0 {
			t.Errorf("pending after draining: %+v", ops)
		}
		if ops := p.outbox("done"); len(ops) != 12 {
			t.Errorf("%d done operations listed, want 12", len(ops))
		}
	})
}

// LiteLLM down during sign-in: the sign-in succeeds, the operations wait in
// the outbox, and once LiteLLM is back each is delivered exactly once.
func TestE2EProvisioningLiteLLMDown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		p := startProvisionE2E(t, st, nil)
		p.litellm.SetDown(true)
		p.signIn("alice-oid")
		p.drain() // every due operation fails and is rescheduled
		if len(p.litellm.Requests()) == 0 {
			t.Fatal("the worker did not try LiteLLM")
		}
		pending := p.outbox("pending")
		if len(pending) != 6 {
			t.Fatalf("%d operations pending, want 6", len(pending))
		}
		for _, op := range pending {
			if op.Attempts > 0 && op.LastError == "" {
				t.Errorf("op %d failed without a recorded error", op.ID)
			}
		}

		p.litellm.SetDown(false)
		p.clock.advance(10 * time.Minute) // past any backoff
		p.drain()
		wantCalls(t, "after LiteLLM came back", p.calls(), map[string]int{"/user/new 200": 1, "/team/new 200": 3, "/team/member_add 200": 2})
		if n := len(p.litellm.Teams()); n != 3 {
			t.Errorf("%d teams in LiteLLM, want 3", n)
		}
		if ops := p.outbox("pending"); len(ops) != 0 {
			t.Errorf("still pending: %+v", ops)
		}
	})
}

// A restart with a non-empty outbox: operations left by a stopped teamgate
// (and one leased by a replica that crashed mid-delivery) are delivered by
// the next one, once each.
func TestE2EProvisioningRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		first := startProvisionE2E(t, st, nil)
		first.signIn("alice-oid") // never drained: teamgate stops here
		if _, err := st.ClaimOutbox(context.Background(), "crashed-replica", 2, first.clock.now(), time.Minute); err != nil {
			t.Fatal(err)
		}

		second := &provisionE2E{litellm: first.litellm, clock: first.clock}
		second.e2e = startE2E(t, st, first.opts) // a new app on the same database
		if n := second.drain(); n == 0 || n == 6 {
			t.Errorf("delivered %d before the crashed replica's lease ended, want some but not all", n)
		}
		second.clock.advance(time.Minute)
		second.drain()
		wantCalls(t, "after the restart", second.calls(), map[string]int{"/user/new 200": 1, "/team/new 200": 3, "/team/member_add 200": 2})
		if len(second.litellm.Requests()) != 6 {
			t.Errorf("LiteLLM got %d requests, want 6", len(second.litellm.Requests()))
		}
	})
}

// Two replicas on one database drain one outbox concurrently: every
// operation reaches LiteLLM exactly once.
func TestE2EProvisioningTwoReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		a := startProvisionE2E(t, st, nil)
		b := &provisionE2E{litellm: a.litellm, clock: a.clock}
		b.e2e = startE2E(t, st, a.opts)
		a.signIn("alice-oid")
		b.signIn("bob-oid")
		var wg sync.WaitGroup
		for _, r := range []*provisionE2E{a, b} {
			r.app.prov.worker.BatchSize = 2
			wg.Go(func() {
				for {
					if _, err := r.app.prov.worker.Drain(context.Background()); err != nil {
						t.Error(err)
						return
					}
					if pending, _, err := st.OutboxStats(context.Background()); err != nil || pending == 0 {
						return
					}
					runtime.Gosched() // the rest is leased by the other replica
				}
			})
		}
		wg.Wait()
		seen := map[string]int{}
		for _, r := range a.litellm.Requests() {
			if r.Status != http.StatusOK {
				t.Errorf("%s answered %d", r.Path, r.Status)
			}
			seen[r.Path+" "+string(r.Body)]++
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("delivered %d times: %s", n, k)
			}
		}
		if len(seen) != 8 { // 2 users, 3 teams, 3 memberships
			t.Errorf("%d distinct operations delivered, want 8", len(seen))
		}
	})
}

// A permanent error parks the operation with its cause (in the admin API
// and the log); a later operation that depends on it parks on its own; a
// retry from the admin API delivers both.
func TestE2EProvisioningParkedAndRetried(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		p := startProvisionE2E(t, st, nil)
		p.app.prov.worker.Concurrency = 1 // deliver in id order, so the injected failure hits team ds
		p.litellm.FailNext("/team/new", 1, http.StatusBadRequest, "")
		p.signIn("alice-oid")
		p.drain()

		parked := p.outbox("parked")
		var kinds []string
		for _, op := range parked {
			kinds = append(kinds, op.Kind+":"+op.TeamID)
			if op.LastError == "" || !strings.Contains(op.LastError, "HTTP 4") {
				t.Errorf("parked op %d has cause %q", op.ID, op.LastError)
			}
		}
		if !slices.Equal(kinds, []string{"member_add:ds", "team_new:ds"}) { // newest first
			t.Fatalf("parked = %v, want ds's team_new and then its member_add", kinds)
		}
		if !strings.Contains(p.logs.String(), `"level":"ERROR","msg":"outbox: LiteLLM refused the operation; parked until retried from the admin API"`) {
			t.Errorf("no error logged for the parked operation")
		}
		if _, ok := p.litellm.Team("eng"); !ok {
			t.Error("eng was held back by ds's parked operation")
		}

		// Retry in the original order; a second retry of the same op conflicts.
		for _, op := range []gateway.AdminOutboxOp{parked[1], parked[0]} {
			if code, body := p.adminPost(fmt.Sprintf("/teamgate/api/outbox/%d/retry", op.ID)); code != http.StatusOK {
				t.Fatalf("retry %d: %d %s", op.ID, code, body)
			}
		}
		if code, _ := p.adminPost(fmt.Sprintf("/teamgate/api/outbox/%d/retry", parked[0].ID)); code != http.StatusConflict {
			t.Errorf("retrying a pending op: %d, want 409", code)
		}
		p.drain()
		if members := members(p.team("ds")); !slices.Contains(members, "alice-oid:user") {
			t.Errorf("ds members after the retry = %v", members)
		}
		if ops := p.outbox("parked"); len(ops) != 0 {
			t.Errorf("still parked: %+v", ops)
		}
	})
}

// With litellm.wait_on_sign_in the sign-in returns only once LiteLLM has
// the user; when LiteLLM is down it gives up after wait_timeout and the
// sign-in succeeds anyway.
func TestE2EProvisioningWaitOnSignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		p := startProvisionE2E(t, st, func(c *Config) {
			c.LiteLLM.WaitOnSignIn = true
			c.LiteLLM.WaitTimeout = 300 * time.Millisecond
		})
		p.app.prov.worker.PollInterval = time.Hour // only the sign-in's Notify wakes it
		ctx, cancel := context.WithCancel(context.Background())
		p.app.prov.start(ctx)
		t.Cleanup(func() { cancel(); p.app.prov.stop(context.Background()) })

		p.signIn("alice-oid")
		if _, ok := p.litellm.User("alice-oid"); !ok {
			t.Error("sign-in returned before LiteLLM had the user")
		}
		if tm := p.team("eng"); !slices.Contains(members(tm), "alice-oid:user") {
			t.Errorf("sign-in returned before the membership reached LiteLLM: %v", members(tm))
		}

		p.litellm.SetDown(true)
		p.signIn("bob-oid")
		if !strings.Contains(p.logs.String(), "sign-in continues before LiteLLM has the user's changes") {
			t.Error("the timed-out wait was not logged")
		}
	})
}

// The outbox endpoints answer 404 when provisioning is off.
func TestE2EOutboxAPIWithoutProvisioning(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		if e.app.prov != nil {
			t.Fatal("provisioning on without a master key")
		}
		if code := e.admin("/teamgate/api/outbox", nil); code != http.StatusNotFound {
			t.Errorf("GET outbox: %d, want 404", code)
		}
	})
}
