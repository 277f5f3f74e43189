package main

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/litellmfake"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// End-to-end LiteLLM provisioning: real sign-ins through the browser flow,
// the fake LiteLLM's management API over HTTP, and the app's own outbox
// worker, driven by Drain with a clock the test moves (no sleeps).

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
		// start runs a teamgate whose worker only the sign-in's Notify wakes.
		start := func(st store.Store, timeout time.Duration) *provisionE2E {
			p := startProvisionE2E(t, st, func(c *Config) {
				c.LiteLLM.WaitOnSignIn = true
				c.LiteLLM.WaitTimeout = timeout
			})
			p.app.prov.worker.PollInterval = time.Hour
			ctx, cancel := context.WithCancel(context.Background())
			p.app.prov.start(ctx)
			t.Cleanup(func() { cancel(); p.app.prov.stop(context.Background()) })
			return p
		}

		// A generous wait_timeout: a slow machine cannot make the sign-in
		// return before LiteLLM has the user, only the wait being skipped can.
		p := start(st, time.Minute)
		p.signIn("alice-oid")
		if _, ok := p.litellm.User("alice-oid"); !ok {
			t.Error("sign-in returned before LiteLLM had the user")
		}
		if tm := p.team("eng"); !slices.Contains(members(tm), "alice-oid:user") {
			t.Errorf("sign-in returned before the membership reached LiteLLM: %v", members(tm))
		}

		// A short one, which LiteLLM being down makes run out.
		p = start(storetest.New(t, st.Dialect()), 300*time.Millisecond)
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
