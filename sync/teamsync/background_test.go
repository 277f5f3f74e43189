package teamsync_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
	"github.com/teamgate/teamgate/sync/teamsync"
)

func (h *harness) background(t *testing.T) *teamsync.Background {
	t.Helper()
	b, err := teamsync.NewBackground(h.recon, teamsync.BackgroundConfig{Interval: time.Hour, Nested: h.nested})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runOnce(t *testing.T, b *teamsync.Background) teamsync.RunResult {
	t.Helper()
	res, err := b.RunOnce(context.Background(), true)
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if res.Skipped {
		t.Fatal("RunOnce skipped")
	}
	return res
}

func backgroundEvents(t *testing.T, st store.Store) []store.SyncEvent {
	t.Helper()
	evs, err := st.SyncEvents(context.Background(), store.EventFilter{Kind: store.EventBackground, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// latestRun is the newest event describing a whole run.
func latestRun(t *testing.T, st store.Store) store.SyncEvent {
	t.Helper()
	for _, e := range backgroundEvents(t, st) {
		if e.UserID == "" {
			return e
		}
	}
	t.Fatal("no background run recorded")
	return store.SyncEvent{}
}

// The gap the job closes: changes in Entra reach teams and memberships with
// nobody signing in.
func TestBackgroundAppliesDeltaWithoutSignIn(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
		h.reconcile(t, "alice")
		h.reconcile(t, "bob")
		b := h.background(t)

		// The first run reads everything and finds nothing to change.
		res := runOnce(t, b)
		if !res.Full || res.MembershipsAdded+res.MembershipsRemoved != 0 || !reflectEmpty(res.Teams) {
			t.Fatalf("first run = %+v, want a full run changing nothing", res)
		}

		// A member removed in Entra loses the team; a member added gains it.
		h.tenant.RemoveMember("ops", "alice")
		h.tenant.AddMember("ops", "bob")
		res = runOnce(t, b)
		if res.Full || res.MembershipsRemoved != 1 || res.MembershipsAdded != 1 {
			t.Fatalf("run after member changes = %+v", res)
		}
		equal(t, "alice's teams", userTeamIDs(t, st, "alice"), []string{"eng"})
		equal(t, "bob's teams", userTeamIDs(t, st, "bob"), []string{"eng", "ops"})

		// A renamed group renames its team.
		h.tenant.RenameGroup("eng", "Engineering (all)")
		res = runOnce(t, b)
		equal(t, "renamed", res.Teams.TeamsRenamed, []string{"eng"})
		if got := getTeam(t, st, "eng").Alias; got != "Engineering (all)" {
			t.Errorf("eng alias = %q", got)
		}

		// A deleted group: its team is unassigned and its members leave it.
		h.tenant.DeleteGroup("ops")
		res = runOnce(t, b)
		equal(t, "unassigned", res.Teams.TeamsUnassigned, []string{"ops"})
		equal(t, "bob's teams", userTeamIDs(t, st, "bob"), []string{"eng"})
		if getTeam(t, st, "ops").Assigned {
			t.Error("ops still assigned after its group was deleted")
		}

		// A group newly assigned to the app becomes a team with its members,
		// although the delta says nothing about it.
		h.tenant.AddMember("evals", "bob")
		runOnce(t, b) // evals is not assigned yet: nothing happens
		equal(t, "bob's teams before assignment", userTeamIDs(t, st, "bob"), []string{"eng"})
		h.tenant.AssignToApp("evals")
		res = runOnce(t, b)
		equal(t, "created", res.Teams.TeamsCreated, []string{"evals"})
		equal(t, "bob's teams", userTeamIDs(t, st, "bob"), []string{"eng", "evals"})

		// Users teamgate never saw are not created.
		h.tenant.AddMember("eng", "nomail")
		runOnce(t, b)
		if _, err := st.User(ctx, "nomail"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a user who never signed in was created: %v", err)
		}

		// Every run left an event, and each user change its own.
		evs := backgroundEvents(t, st)
		runs, users := 0, map[string]bool{}
		for _, e := range evs {
			if e.UserID == "" {
				runs++
				if e.Outcome != "ok" || !strings.Contains(e.Detail, "groups changed") {
					t.Errorf("run event = %+v", e)
				}
			} else {
				users[e.UserID] = true
			}
		}
		if runs != 7 || !users["alice"] || !users["bob"] {
			t.Errorf("background events: %d runs, users %v; want 7 runs, alice and bob", runs, users)
		}
	})
}

// After Graph expires the delta link, the next run starts over with a full
// read and still applies what changed meanwhile.
func TestBackgroundResyncAfterGone(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
		h.reconcile(t, "alice")
		b := h.background(t)
		runOnce(t, b)

		h.tenant.RemoveMember("ops", "alice")
		h.tenant.ExpireDeltaTokens()
		res := runOnce(t, b)
		if !res.Resynced || !res.Full {
			t.Fatalf("run after expiry = %+v, want a full resync", res)
		}
		equal(t, "alice's teams", userTeamIDs(t, st, "alice"), []string{"eng"})
		if run := latestRun(t, st); !strings.Contains(run.Detail, "resync") {
			t.Errorf("latest background run = %+v, want it to say resync", run)
		}
		// The link stored by the resync works: the next run is incremental.
		if res := runOnce(t, b); res.Full {
			t.Errorf("run after resync = %+v, want incremental", res)
		}
	})
}

// Throttling during a run is retried (Retry-After honoured) and the run
// completes.
func TestBackgroundRetriesThrottling(t *testing.T) {
	s := storetest.New(t, "sqlite")
	h := newHarness(t, s, setup{dir: seedDir(), appScoped: true})
	h.reconcile(t, "alice")
	b := h.background(t)
	runOnce(t, b)
	h.tenant.RemoveMember("ops", "alice")
	h.tenant.FailNext("groups/delta", 2, 429, "3")
	runOnce(t, b)
	equal(t, "alice's teams", userTeamIDs(t, s, "alice"), []string{"eng"})
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sleeps) < 2 || h.sleeps[0] != 3*time.Second {
		t.Errorf("sleeps = %v, want two waits of Retry-After 3s", h.sleeps)
	}
}

// A run that could not bring every user up to date keeps the old delta
// link, so the next run reads the same changes again and nothing is lost.
func TestBackgroundFailedUserKeepsDeltaLink(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s store.Store) {
		h := newHarness(t, s, setup{dir: seedDir(), appScoped: true})
		h.reconcile(t, "alice")
		b := h.background(t)
		runOnce(t, b)

		h.tenant.RemoveMember("ops", "alice")
		h.tenant.FailNext("/users/alice/memberOf", 1, 403, "") // not retried: this run fails for alice
		if _, err := b.RunOnce(context.Background(), true); err == nil {
			t.Fatal("run with Graph failing for alice succeeded")
		}
		equal(t, "alice's teams after the failed run", userTeamIDs(t, s, "alice"), []string{"eng", "ops"})
		if run := latestRun(t, s); run.Outcome != "error" {
			t.Errorf("latest background run = %+v, want an error", run)
		}
		res := runOnce(t, b)
		if res.MembershipsRemoved != 1 {
			t.Errorf("retry run = %+v, want alice's removal", res)
		}
		equal(t, "alice's teams", userTeamIDs(t, s, "alice"), []string{"eng"})
	})
}

// The first run (a full read) also repairs memberships that went stale
// before background sync was turned on.
func TestBackgroundFullRunRepairsStaleMemberships(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s store.Store) {
		h := newHarness(t, s, setup{dir: seedDir(), appScoped: true})
		h.reconcile(t, "alice")
		h.tenant.RemoveMember("ops", "alice")
		h.tenant.AddMember("ops", "bob")
		h.reconcile(t, "bob")
		h.tenant.RemoveMember("eng", "bob")
		res := runOnce(t, h.background(t))
		if !res.Full {
			t.Fatalf("first run = %+v, want full", res)
		}
		equal(t, "alice's teams", userTeamIDs(t, s, "alice"), []string{"eng"})
		equal(t, "bob's teams", userTeamIDs(t, s, "bob"), []string{"ops"})
	})
}

// Without a service principal every group of a user is a team: renames and
// deletions of those groups still apply, and a user added to a new group
// gets a team for it.
func TestBackgroundWithoutServicePrincipal(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s store.Store) {
		h := newHarness(t, s, setup{dir: seedDir()})
		h.reconcile(t, "alice")
		b := h.background(t)
		runOnce(t, b)
		h.tenant.RenameGroup("ops", "Operations EU")
		h.tenant.AddMember("evals", "alice")
		runOnce(t, b)
		if got := getTeam(t, s, "ops").Alias; got != "Operations EU" {
			t.Errorf("ops alias = %q", got)
		}
		equal(t, "alice's teams", userTeamIDs(t, s, "alice"), []string{"eng", "evals", "ops"})
		h.tenant.DeleteGroup("eng")
		res := runOnce(t, b)
		equal(t, "unassigned", res.Teams.TeamsUnassigned, []string{"eng"})
		equal(t, "alice's teams", userTeamIDs(t, s, "alice"), []string{"evals", "ops"})
	})
}

// With nested groups a change in a group that is not itself a team (a
// subgroup) still reaches the users it affects.
func TestBackgroundNestedGroups(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s store.Store) {
		dir := seedDir()
		dir.Groups = append(dir.Groups, fakeentra.Group{ID: "sub", DisplayName: "Subteam", MemberOf: []string{"eng"}})
		h := newHarness(t, s, setup{dir: dir, appScoped: true, nested: true})
		h.tenant.AddMember("sub", "bob")
		h.tenant.RemoveMember("eng", "bob")
		h.reconcile(t, "bob")
		equal(t, "bob's teams (through sub)", userTeamIDs(t, s, "bob"), []string{"eng"})
		b := h.background(t)
		runOnce(t, b)
		h.tenant.RemoveMember("sub", "bob")
		runOnce(t, b)
		equal(t, "bob's teams", userTeamIDs(t, s, "bob"), nil)
	})
}

// Only one replica runs the job at a time, and replicas whose tickers are
// out of step do not run it twice per interval.
func TestBackgroundOneLeader(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		h := newHarness(t, s, setup{dir: seedDir(), appScoped: true})
		h.reconcile(t, "alice")
		b := h.background(t)

		release, ok, err := s.TryLeader(ctx, "teamsync.background")
		if err != nil || !ok {
			t.Fatalf("TryLeader = %v, %v", ok, err)
		}
		if res, err := b.RunOnce(ctx, true); err != nil || !res.Skipped {
			t.Errorf("RunOnce while another holds the lead = %+v, %v; want skipped", res, err)
		}
		release()

		if res, err := b.RunOnce(ctx, false); err != nil || res.Skipped {
			t.Fatalf("first run = %+v, %v", res, err)
		}
		if res, err := b.RunOnce(ctx, false); err != nil || !res.Skipped {
			t.Errorf("second run within half an interval = %+v, %v; want skipped", res, err)
		}
	})
}

func TestRecheckVerdicts(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		h := newHarness(t, s, setup{dir: seedDir(), appScoped: true})
		for _, u := range []string{"alice", "bob", "nomail"} {
			h.reconcile(t, u)
			if err := s.CreateSession(ctx, store.Session{ID: "sess-" + u, UserID: u, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		ended := func(u string) string {
			t.Helper()
			a, err := s.ActiveSession(ctx, "sess-"+u, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return a.EndedReason
		}

		// Group changes apply; the user stays signed in and is marked validated.
		h.tenant.RemoveMember("ops", "alice")
		before := time.Now()
		res, err := h.recon.Recheck(ctx, "alice", store.EventRevalidate)
		if err != nil || res.Verdict != teamsync.VerdictOK {
			t.Fatalf("Recheck(alice) = %+v, %v", res, err)
		}
		equal(t, "alice's teams", userTeamIDs(t, s, "alice"), []string{"eng"})
		if u, _ := s.User(ctx, "alice"); u.ValidatedAt == nil || u.ValidatedAt.Before(before) {
			t.Errorf("validated_at = %v, want after %v", u.ValidatedAt, before)
		}
		if r := ended("alice"); r != "" {
			t.Errorf("alice's session ended: %q", r)
		}

		// A disabled account loses its sessions.
		h.tenant.DisableUser("bob")
		if res, err := h.recon.Recheck(ctx, "bob", store.EventRevalidate); err != nil || res.Verdict != teamsync.VerdictDisabled || res.SessionsEnded != 1 {
			t.Fatalf("Recheck(disabled bob) = %+v, %v", res, err)
		}
		if r := ended("bob"); r != string(teamsync.VerdictDisabled) {
			t.Errorf("bob's session ended reason = %q", r)
		}

		// A deleted account loses its sessions and its Entra memberships.
		h.tenant.DeleteUser("nomail")
		if res, err := h.recon.Recheck(ctx, "nomail", store.EventRevalidate); err != nil || res.Verdict != teamsync.VerdictDeleted {
			t.Fatalf("Recheck(deleted) = %+v, %v", res, err)
		}
		equal(t, "deleted user's teams", userTeamIDs(t, s, "nomail"), nil)
		if r := ended("nomail"); r != string(teamsync.VerdictDeleted) {
			t.Errorf("deleted user's session ended reason = %q", r)
		}

		// Assignment required: a user in no assigned group, not assigned directly.
		h.tenant.SetAssignmentRequired(true)
		if res, err := h.recon.Recheck(ctx, "alice", store.EventRevalidate); err != nil || res.Verdict != teamsync.VerdictOK {
			t.Fatalf("Recheck(alice, assigned through eng) = %+v, %v", res, err)
		}
		h.tenant.RemoveMember("eng", "alice")
		if res, err := h.recon.Recheck(ctx, "alice", store.EventRevalidate); err != nil || res.Verdict != teamsync.VerdictUnassigned {
			t.Fatalf("Recheck(alice, unassigned) = %+v, %v", res, err)
		}
		if r := ended("alice"); r != string(teamsync.VerdictUnassigned) {
			t.Errorf("alice's session ended reason = %q", r)
		}

		// A user teamgate never stored.
		if _, err := h.recon.Recheck(ctx, "stranger", store.EventRevalidate); !errors.Is(err, teamsync.ErrUnknownUser) {
			t.Errorf("Recheck(stranger) = %v, want ErrUnknownUser", err)
		}
	})
}

// A Graph outage during a re-check changes nothing and ends no session.
func TestRecheckGraphOutageChangesNothing(t *testing.T) {
	s := storetest.New(t, "sqlite")
	ctx := context.Background()
	h := newHarness(t, s, setup{dir: seedDir(), appScoped: true})
	h.reconcile(t, "alice")
	h.tenant.RemoveMember("ops", "alice")
	h.tenant.FailNext("/users/alice", 20, 503, "")
	if _, err := h.recon.Recheck(ctx, "alice", store.EventRevalidate); err == nil {
		t.Fatal("Recheck succeeded with Graph down")
	}
	equal(t, "alice's teams", userTeamIDs(t, s, "alice"), []string{"eng", "ops"})
}

// With CreateUsers, a user the delta adds to a team's group is created
// before their first sign-in, with their memberships and, with
// provisioning, in LiteLLM; a disabled account is not.
func TestBackgroundCreatesUsersWhenAsked(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		h := newHarness(t, s, setup{dir: seedDir(), appScoped: true})
		h.provision(teamsync.Provisioning{Enabled: true, BlockUnassignedTeams: true})
		h.reconcile(t, "alice")
		b, err := teamsync.NewBackground(h.recon, teamsync.BackgroundConfig{Interval: time.Hour, CreateUsers: true})
		if err != nil {
			t.Fatal(err)
		}
		runOnce(t, b)
		if u, err := s.User(ctx, "bob"); err != nil || u.LastLoginAt != nil || u.UserRole != "internal_user" {
			t.Fatalf("bob after the first run = %+v, %v; want created, never signed in", u, err)
		}
		equal(t, "bob's teams", userTeamIDs(t, s, "bob"), []string{"eng"})

		equal(t, "nomail's teams", userTeamIDs(t, s, "nomail"), []string{"eng"})

		// Incremental: a new, enabled user is created; a disabled one is not.
		h.tenant.Update(func(d *fakeentra.Directory) {
			d.Users = append(d.Users,
				fakeentra.User{ID: "dan", DisplayName: "Dan", UPN: "dan@example.com"},
				fakeentra.User{ID: "eve", DisplayName: "Eve", UPN: "eve@example.com", Disabled: true})
		})
		h.tenant.AddMember("ops", "dan")
		h.tenant.AddMember("ops", "eve")
		res := runOnce(t, b)
		if res.UsersCreated != 1 {
			t.Errorf("incremental run created %d users, want 1 (dan)", res.UsersCreated)
		}
		equal(t, "dan's teams", userTeamIDs(t, s, "dan"), []string{"ops"})
		if _, err := s.User(ctx, "eve"); err == nil {
			t.Error("a disabled account was created")
		}
		ops, _ := outbox(t, s)
		if !slices.Contains(ops, "user_new::bob") {
			t.Errorf("outbox = %v, want bob's user_new", ops)
		}
		if !slices.Contains(ops, "member_add:eng:bob") {
			t.Errorf("outbox = %v, want bob's membership", ops)
		}
	})
}
