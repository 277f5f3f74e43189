package teamsync_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
	"github.com/teamgate/teamgate/sync/teamsync"
)

// harness is a fake tenant, a Graph client against it, a store and a reconciler.
type harness struct {
	tenant *fakeentra.Tenant
	graph  *graph.Client
	store  store.Store
	recon  *teamsync.Reconciler
	sp     string
	nested bool
	sleeps []time.Duration
	mu     sync.Mutex
}

var (
	budget   = 100.0
	tpm      = int64(1000)
	defaults = teamsync.Config{
		DefaultTeamParams:         teamsync.TeamParams{MaxBudget: &budget, BudgetDuration: "30d", Models: []string{"gpt-3.5-turbo"}, TPMLimit: &tpm},
		DefaultInternalUserParams: teamsync.UserParams{UserRole: "internal_user", BudgetDuration: "7d", Models: []string{"gpt-4o-mini"}},
	}
)

const spID = "sp-0000"

type setup struct {
	dir       fakeentra.Directory
	appScoped bool
	nested    bool
}

func newHarness(t *testing.T, st store.Store, s setup) *harness {
	t.Helper()
	h := &harness{store: st}
	sp := ""
	if s.appScoped {
		sp = spID
	}
	var err error
	h.tenant, err = fakeentra.New(fakeentra.Config{
		TenantID: "tenant-1", ClientID: "client-1", ClientSecret: "s3cret-client-value",
		ServicePrincipalID: spID, Directory: s.dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.tenant)
	t.Cleanup(srv.Close)
	h.tenant.SetBaseURL(srv.URL)
	h.sp, h.nested = sp, s.nested
	h.connect(t)
	return h
}

// connect builds a fresh Graph client (empty token cache) and reconciler.
func (h *harness) connect(t *testing.T) {
	t.Helper()
	var err error
	h.graph, err = graph.New(graph.Config{
		TenantID: "tenant-1", ClientID: "client-1", ClientSecret: "s3cret-client-value",
		AuthorityHost: h.tenant.AuthorityHost(), GraphURL: h.tenant.GraphURL(),
		ServicePrincipalID: h.sp, NestedGroups: h.nested,
		AppGroupsTTL: time.Nanosecond, // every reconcile sees the current assignments
	}, graph.WithSleep(func(ctx context.Context, d time.Duration) error {
		h.mu.Lock()
		h.sleeps = append(h.sleeps, d)
		h.mu.Unlock()
		return ctx.Err()
	}), graph.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	h.recon = teamsync.New(h.graph, h.store, defaults, teamsync.WithLogger(slog.New(slog.DiscardHandler)))
}

func (h *harness) reconcile(t *testing.T, userID string) teamsync.Result {
	t.Helper()
	res, err := h.recon.Reconcile(context.Background(), teamsync.Identity{UserID: userID})
	if err != nil {
		t.Fatalf("Reconcile(%s): %v", userID, err)
	}
	return res
}

func userTeamIDs(t *testing.T, st store.Store, userID string) []string {
	t.Helper()
	teams, err := st.UserTeams(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tm := range teams {
		ids = append(ids, tm.ID)
	}
	slices.Sort(ids)
	return ids
}

func getTeam(t *testing.T, st store.Store, id string) store.Team {
	t.Helper()
	tm, err := st.Team(context.Background(), id)
	if err != nil {
		t.Fatalf("Team(%s): %v", id, err)
	}
	return tm
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// seedDir: alice in eng and ops (both assigned), bob in eng, a directory role
// mixed in; "evals" is not assigned yet.
func seedDir() fakeentra.Directory {
	return fakeentra.Directory{
		Users: []fakeentra.User{
			{ID: "alice", DisplayName: "Alice", Mail: "Alice@Example.com", UPN: "alice@example.com", MemberOf: []string{"eng", "ops", "role-reader"}},
			{ID: "bob", DisplayName: "Bob", Mail: "bob@example.com", UPN: "bob@example.com", MemberOf: []string{"eng"}},
			{ID: "nomail", DisplayName: "No Mail", UPN: "No.Mail@Example.com", MemberOf: []string{"eng"}},
		},
		Groups: []fakeentra.Group{
			{ID: "eng", DisplayName: "Engineering"},
			{ID: "ops", DisplayName: "Operations"},
			{ID: "evals", DisplayName: "Production LLM Evals Group"},
		},
		DirectoryRoles: []fakeentra.DirectoryRole{{ID: "role-reader", DisplayName: "Global Reader"}},
		AppAssignments: []string{"eng", "ops"},
	}
}

// The seed tutorial's three scenarios, on both databases.
func TestSeedScenarios(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
		h.reconcile(t, "bob")
		if _, err := st.Team(context.Background(), "evals"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("evals team exists before assignment: %v", err)
		}

		// 1. A group newly assigned to the app becomes a team named after it
		//    at the next sign-in by anyone (bob is not a member).
		h.tenant.AssignToApp("evals")
		res := h.reconcile(t, "bob")
		equal(t, "teams created", res.Changes.TeamsCreated, []string{"evals"})
		evals := getTeam(t, st, "evals")
		if evals.Alias != "Production LLM Evals Group" || !evals.Assigned {
			t.Errorf("evals team = %+v", evals)
		}
		// 3. It carries default_team_params.
		if evals.MaxBudget == nil || *evals.MaxBudget != 100 || evals.BudgetDuration != "30d" ||
			!slices.Equal(evals.Models, []string{"gpt-3.5-turbo"}) || evals.TPMLimit == nil || *evals.TPMLimit != 1000 || evals.RPMLimit != nil {
			t.Errorf("evals params = %+v, want default_team_params", evals)
		}
		equal(t, "bob's teams", userTeamIDs(t, st, "bob"), []string{"eng"})

		// 2. A user added to that group becomes a member at their next sign-in.
		h.tenant.AddMember("evals", "bob")
		res = h.reconcile(t, "bob")
		equal(t, "memberships added", res.Changes.MembershipsAdded, []string{"evals"})
		equal(t, "bob's teams", userTeamIDs(t, st, "bob"), []string{"eng", "evals"})
	})
}

func TestReconcileFirstSignIn(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
		res := h.reconcile(t, "alice")
		if !res.UserCreated {
			t.Error("UserCreated = false on first sign-in")
		}
		equal(t, "teams created", res.Changes.TeamsCreated, []string{"eng", "ops"})
		equal(t, "alice's teams (directory role dropped)", userTeamIDs(t, st, "alice"), []string{"eng", "ops"})
		u, err := st.User(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != "alice@example.com" || u.UPN != "alice@example.com" || u.DisplayName != "Alice" {
			t.Errorf("identity = %q %q %q", u.Email, u.UPN, u.DisplayName)
		}
		if u.UserRole != "internal_user" || u.BudgetDuration != "7d" || !slices.Equal(u.Models, []string{"gpt-4o-mini"}) || u.LastLoginAt == nil {
			t.Errorf("new user params = %+v, want default_internal_user_params", u)
		}

		// Idempotent: the second run changes nothing.
		res = h.reconcile(t, "alice")
		if res.UserCreated || !reflectEmpty(res.Changes) {
			t.Errorf("second reconcile changed %+v (created=%v)", res.Changes, res.UserCreated)
		}
	})
}

func reflectEmpty(c teamsync.Changes) bool {
	return len(c.TeamsCreated)+len(c.TeamsRenamed)+len(c.TeamsAssigned)+len(c.TeamsUnassigned)+
		len(c.MembershipsAdded)+len(c.MembershipsRemoved) == 0
}

func TestReconcileRenameLeaveManualUnassign(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
		h.reconcile(t, "alice")

		// An admin adds alice to evals by hand (manual), after creating it via assignment.
		h.tenant.AssignToApp("evals")
		h.reconcile(t, "bob")
		if err := st.AddManualMembership(ctx, "evals", "alice", "user", time.Now()); err != nil {
			t.Fatal(err)
		}
		// (That an existing user's params are never overwritten is the
		// store conformance test UpsertUserRefreshesIdentityKeepsParams.)

		h.tenant.RenameGroup("eng", "Engineering (all)")
		h.tenant.RemoveMember("ops", "alice")
		res := h.reconcile(t, "alice")
		equal(t, "renamed", res.Changes.TeamsRenamed, []string{"eng"})
		equal(t, "removed", res.Changes.MembershipsRemoved, []string{"ops"})
		if got := getTeam(t, st, "eng").Alias; got != "Engineering (all)" {
			t.Errorf("eng alias = %q", got)
		}
		equal(t, "alice's teams (manual evals kept)", userTeamIDs(t, st, "alice"), []string{"eng", "evals"})

		// Unassigning eng: team kept, marked unassigned, alice leaves at her next sync.
		h.tenant.UnassignFromApp("eng")
		res = h.reconcile(t, "alice")
		equal(t, "unassigned", res.Changes.TeamsUnassigned, []string{"eng"})
		equal(t, "removed", res.Changes.MembershipsRemoved, []string{"eng"})
		if tm := getTeam(t, st, "eng"); tm.Assigned {
			t.Error("eng still assigned")
		}
		equal(t, "alice's teams", userTeamIDs(t, st, "alice"), []string{"evals"})
		// bob is still in eng until he signs in; then he leaves it too.
		equal(t, "bob's teams before his sync", userTeamIDs(t, st, "bob"), []string{"eng"})
		h.reconcile(t, "bob")
		equal(t, "bob's teams after his sync", userTeamIDs(t, st, "bob"), nil)

		// Assigned again: the team comes back and members rejoin.
		h.tenant.AssignToApp("eng")
		res = h.reconcile(t, "alice")
		equal(t, "reassigned", res.Changes.TeamsAssigned, []string{"eng"})
		equal(t, "alice's teams", userTeamIDs(t, st, "alice"), []string{"eng", "evals"})
	})
}

func TestReconcileUserWithoutMail(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
		h.reconcile(t, "nomail")
		u, err := st.User(context.Background(), "nomail")
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != "no.mail@example.com" || u.UPN != "No.Mail@Example.com" {
			t.Errorf("email, upn = %q, %q; want the lower-cased UPN as email", u.Email, u.UPN)
		}
	})
}

func TestReconcileWithoutServicePrincipal(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		h := newHarness(t, st, setup{dir: seedDir()})
		h.tenant.AddMember("evals", "alice") // not assigned to the app, but every group counts
		h.reconcile(t, "alice")
		equal(t, "alice's teams", userTeamIDs(t, st, "alice"), []string{"eng", "evals", "ops"})
	})
}

func TestReconcileNestedGroups(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		dir := seedDir()
		dir.Groups = append(dir.Groups, fakeentra.Group{ID: "eng-platform", DisplayName: "Platform", MemberOf: []string{"ops"}})
		dir.Users[1].MemberOf = []string{"eng-platform"} // bob: only via nesting in ops
		h := newHarness(t, st, setup{dir: dir, appScoped: true, nested: true})
		h.reconcile(t, "bob")
		equal(t, "bob's teams (nested)", userTeamIDs(t, st, "bob"), []string{"ops"})
	})
}

func manyGroups(n int, prefix string) []fakeentra.Group {
	gs := make([]fakeentra.Group, n)
	for i := range gs {
		gs[i] = fakeentra.Group{ID: fmt.Sprintf("%s-%04d", prefix, i), DisplayName: fmt.Sprintf("%s group %d", prefix, i)}
	}
	return gs
}

func ids(gs []fakeentra.Group) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.ID
	}
	return out
}

func TestReconcileManyGroupsPaging(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		t.Run("1200 groups for one user", func(t *testing.T) {
			gs := manyGroups(1200, "g")
			dir := fakeentra.Directory{Groups: gs, Users: []fakeentra.User{{ID: "u", DisplayName: "U", UPN: "u@example.com", MemberOf: ids(gs)}}}
			h := newHarness(t, st, setup{dir: dir})
			res := h.reconcile(t, "u")
			if len(res.Changes.TeamsCreated) != 1200 || len(userTeamIDs(t, st, "u")) != 1200 {
				t.Errorf("created %d teams, user in %d; want 1200", len(res.Changes.TeamsCreated), len(userTeamIDs(t, st, "u")))
			}
			if n := h.tenant.Calls("/memberOf"); n < 2 {
				t.Errorf("memberOf calls = %d, want at least 2 pages", n)
			}
		})
		t.Run("150 app-assigned groups", func(t *testing.T) {
			gs := manyGroups(150, "app")
			dir := fakeentra.Directory{Groups: gs, AppAssignments: ids(gs),
				Users: []fakeentra.User{{ID: "v", DisplayName: "V", UPN: "v@example.com", MemberOf: []string{"app-0149"}}}}
			h := newHarness(t, st, setup{dir: dir, appScoped: true})
			res := h.reconcile(t, "v")
			if len(res.Changes.TeamsCreated) != 150 {
				t.Errorf("created %d teams, want 150", len(res.Changes.TeamsCreated))
			}
			equal(t, "v's teams", userTeamIDs(t, st, "v"), []string{"app-0149"})
		})
	})
}

func TestReconcileRetriesThrottling(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
		h.tenant.FailNext("/memberOf", 2, 429, "3")
		h.reconcile(t, "alice")
		equal(t, "alice's teams", userTeamIDs(t, st, "alice"), []string{"eng", "ops"})
		if !slices.Contains(h.sleeps, 3*time.Second) {
			t.Errorf("sleeps = %v, want the Retry-After of 3s honoured", h.sleeps)
		}
	})
}

// snapshot captures everything a failed reconcile must leave untouched.
func snapshot(t *testing.T, st store.Store) string {
	t.Helper()
	ctx := context.Background()
	teams, err := st.Teams(ctx, store.TeamFilter{})
	if err != nil {
		t.Fatal(err)
	}
	members, err := st.MembersOfTeams(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	users, err := st.Users(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal([]any{teams, members, users})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReconcileFailuresChangeNothing(t *testing.T) {
	tests := []struct {
		name     string
		break_   func(tn *fakeentra.Tenant)
		wantPerm string
		wantUnav bool
	}{
		{"403 on app assignments", func(tn *fakeentra.Tenant) {
			tn.SetAppPermissions(graph.PermGroupMemberReadAll, graph.PermUserReadAll)
		}, graph.PermApplicationReadAll, false},
		{"limited information", func(tn *fakeentra.Tenant) {
			tn.SetAppPermissions(graph.PermApplicationReadAll, graph.PermUserReadAll)
		}, graph.PermGroupMemberReadAll, false},
		{"Graph unavailable", func(tn *fakeentra.Tenant) { tn.FailNext("/memberOf", 10, 503, "") }, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
				h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
				h.reconcile(t, "alice")
				h.tenant.AssignToApp("evals")
				h.tenant.RenameGroup("eng", "Renamed")
				h.tenant.RemoveMember("ops", "alice")
				before := snapshot(t, st)
				tc.break_(h.tenant)
				h.connect(t) // a new token carries the changed permissions

				_, err := h.recon.Reconcile(context.Background(), teamsync.Identity{UserID: "alice"})
				if err == nil {
					t.Fatal("Reconcile succeeded, want an error")
				}
				var re *teamsync.Error
				if !errors.As(err, &re) || re.Stage != teamsync.StageGraph {
					t.Errorf("error %v is not a graph-stage *teamsync.Error", err)
				}
				if perm, ok := teamsync.IsPermission(err); tc.wantPerm != "" && (!ok || perm != tc.wantPerm) {
					t.Errorf("permission = %q, %v; want %q", perm, ok, tc.wantPerm)
				}
				if tc.wantUnav && !errors.Is(err, graph.ErrUnavailable) {
					t.Errorf("error %v does not wrap graph.ErrUnavailable", err)
				}
				if after := snapshot(t, st); after != before {
					t.Errorf("database changed by a failed reconcile:\nbefore %s\nafter  %s", before, after)
				}
				evs, err := st.SyncEvents(context.Background(), store.EventFilter{UserID: "alice"})
				if err != nil || len(evs) == 0 || evs[0].Outcome != "error" || evs[0].Error == "" {
					t.Errorf("latest sync event = %+v (%v), want an error event", evs, err)
				}
			})
		})
	}
}

// 50 users signing in at once, sharing 20 groups no one has seen yet.
func TestReconcileConcurrentSignIns(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		shared := manyGroups(20, "shared")
		dir := fakeentra.Directory{Groups: shared, AppAssignments: ids(shared)}
		want := map[string][]string{}
		for i := 0; i < 50; i++ {
			id := fmt.Sprintf("user-%02d", i)
			var mine []string
			for j := range shared {
				if (i+j)%3 != 0 {
					mine = append(mine, shared[j].ID)
				}
			}
			dir.Users = append(dir.Users, fakeentra.User{ID: id, DisplayName: id, UPN: id + "@example.com", MemberOf: mine})
			want[id] = mine
		}
		h := newHarness(t, st, setup{dir: dir, appScoped: true})
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		created := make(chan []string, 50)
		for id := range want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := h.recon.Reconcile(context.Background(), teamsync.Identity{UserID: id})
				if err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
					return
				}
				created <- res.Changes.TeamsCreated
			}()
		}
		wg.Wait()
		close(errs)
		close(created)
		for err := range errs {
			t.Error(err)
		}
		total := 0
		for c := range created {
			total += len(c)
		}
		if total != 20 {
			t.Errorf("teams reported created = %d in all, want exactly 20", total)
		}
		teams, err := st.Teams(context.Background(), store.TeamFilter{})
		if err != nil || len(teams) != 20 {
			t.Fatalf("teams = %d (%v), want 20", len(teams), err)
		}
		for id, mine := range want {
			slices.Sort(mine)
			equal(t, id+"'s teams", userTeamIDs(t, st, id), mine)
		}
	})
}

// Two reconciles of the same user at once serialize and agree.
func TestReconcileSameUserConcurrently(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
		var wg sync.WaitGroup
		added := make(chan int, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := h.recon.Reconcile(context.Background(), teamsync.Identity{UserID: "alice"})
				if err != nil {
					t.Error(err)
					return
				}
				added <- len(res.Changes.MembershipsAdded)
			}()
		}
		wg.Wait()
		close(added)
		sum := 0
		for n := range added {
			sum += n
		}
		if sum != 2 {
			t.Errorf("memberships reported added = %d in all, want 2", sum)
		}
		equal(t, "alice's teams", userTeamIDs(t, st, "alice"), []string{"eng", "ops"})
	})
}
