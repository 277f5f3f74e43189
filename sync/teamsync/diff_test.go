package teamsync

import (
	"reflect"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
)

func TestDiff(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	before, after := t0.Add(-time.Minute), t0.Add(time.Minute)
	budget := 100.0
	defaults := store.TeamParams{MaxBudget: &budget, BudgetDuration: "30d", Models: []string{"gpt-3.5-turbo"}}
	g := func(id, name string) graph.Group { return graph.Group{ID: id, DisplayName: name} }
	team := func(id, alias string, assigned bool, updated time.Time) store.Team {
		return store.Team{ID: id, Alias: alias, Assigned: assigned, UpdatedAt: updated}
	}
	teams := func(ts ...store.Team) map[string]store.Team {
		m := map[string]store.Team{}
		for _, t := range ts {
			m[t.ID] = t
		}
		return m
	}
	entra := func(team string) store.Membership {
		return store.Membership{TeamID: team, UserID: "u", Role: "user", Source: store.SourceEntra}
	}
	manual := func(team string) store.Membership {
		return store.Membership{TeamID: team, UserID: "u", Role: "user", Source: store.SourceManual}
	}
	newTeam := func(id, alias string) store.Team {
		return store.Team{ID: id, Alias: alias, MaxBudget: &budget, BudgetDuration: "30d", Models: []string{"gpt-3.5-turbo"}, Assigned: true}
	}

	tests := []struct {
		name string
		obs  Observed
		cur  Current
		want Plan
	}{{
		name: "first sign-in without app scoping: every group is a team",
		obs:  Observed{UserGroups: []graph.Group{g("b", "Beta"), g("a", "Alpha")}},
		want: Plan{Create: []store.Team{newTeam("a", "Alpha"), newTeam("b", "Beta")}, AddMemberships: []string{"a", "b"}},
	}, {
		name: "app scoped: every assigned group becomes a team, user joins only assigned groups",
		obs: Observed{
			UserGroups: []graph.Group{g("a", "Alpha"), g("x", "Not assigned")},
			AppScoped:  true, AppGroups: []graph.Group{g("a", "Alpha"), g("evals", "Production LLM Evals Group")}, AppFetchedAt: t0,
		},
		want: Plan{Create: []store.Team{newTeam("a", "Alpha"), newTeam("evals", "Production LLM Evals Group")}, AddMemberships: []string{"a"}},
	}, {
		name: "steady state changes nothing",
		obs:  Observed{UserGroups: []graph.Group{g("a", "Alpha")}, AppScoped: true, AppGroups: []graph.Group{g("a", "Alpha")}, AppFetchedAt: t0},
		cur:  Current{Teams: teams(team("a", "Alpha", true, before)), AssignedIDs: []string{"a"}, Memberships: []store.Membership{entra("a")}},
		want: Plan{},
	}, {
		name: "rename seen in the user's groups applies even if the app list is older",
		obs:  Observed{UserGroups: []graph.Group{g("a", "Alpha 2")}, AppScoped: true, AppGroups: []graph.Group{g("a", "Alpha")}, AppFetchedAt: before},
		cur:  Current{Teams: teams(team("a", "Alpha", true, t0)), AssignedIDs: []string{"a"}, Memberships: []store.Membership{entra("a")}},
		want: Plan{Rename: map[string]string{"a": "Alpha 2"}},
	}, {
		name: "rename seen only in a fresh app list applies",
		obs:  Observed{AppScoped: true, AppGroups: []graph.Group{g("a", "Alpha 2")}, AppFetchedAt: after},
		cur:  Current{Teams: teams(team("a", "Alpha", true, t0)), AssignedIDs: []string{"a"}},
		want: Plan{Rename: map[string]string{"a": "Alpha 2"}},
	}, {
		name: "a stale cached app list does not undo a newer rename",
		obs:  Observed{AppScoped: true, AppGroups: []graph.Group{g("a", "Old name")}, AppFetchedAt: before},
		cur:  Current{Teams: teams(team("a", "New name", true, t0)), AssignedIDs: []string{"a"}},
		want: Plan{},
	}, {
		name: "leaving a group removes the entra membership, keeps the manual one",
		obs:  Observed{UserGroups: []graph.Group{g("a", "Alpha")}},
		cur: Current{
			Teams:       teams(team("a", "Alpha", true, before), team("b", "Beta", true, before), team("m", "Manual", true, before)),
			Memberships: []store.Membership{entra("a"), entra("b"), manual("m")},
		},
		want: Plan{RemoveMemberships: []string{"b"}},
	}, {
		name: "a manual membership of a group the user is in is not duplicated",
		obs:  Observed{UserGroups: []graph.Group{g("m", "Manual")}},
		cur:  Current{Teams: teams(team("m", "Manual", true, before)), Memberships: []store.Membership{manual("m")}},
		want: Plan{},
	}, {
		name: "group unassigned from the app: team kept but unassigned, members leave",
		obs:  Observed{UserGroups: []graph.Group{g("a", "Alpha"), g("b", "Beta")}, AppScoped: true, AppGroups: []graph.Group{g("a", "Alpha")}, AppFetchedAt: after},
		cur: Current{
			Teams:       teams(team("a", "Alpha", true, before), team("b", "Beta", true, before)),
			AssignedIDs: []string{"a", "b"}, Memberships: []store.Membership{entra("a"), entra("b")},
		},
		want: Plan{Unassign: []string{"b"}, RemoveMemberships: []string{"b"}},
	}, {
		name: "a stale app list does not unassign a team assigned after it was read",
		obs:  Observed{AppScoped: true, AppGroups: []graph.Group{g("a", "Alpha")}, AppFetchedAt: before},
		cur:  Current{Teams: teams(team("a", "Alpha", true, before), team("b", "Beta", true, t0)), AssignedIDs: []string{"a", "b"}},
		want: Plan{},
	}, {
		name: "group assigned again: team reassigned, user rejoins",
		obs:  Observed{UserGroups: []graph.Group{g("b", "Beta")}, AppScoped: true, AppGroups: []graph.Group{g("b", "Beta")}, AppFetchedAt: after},
		cur:  Current{Teams: teams(team("b", "Beta", false, t0))},
		want: Plan{Assign: []string{"b"}, AddMemberships: []string{"b"}},
	}, {
		name: "existing team keeps its own params",
		obs:  Observed{UserGroups: []graph.Group{g("a", "Alpha")}},
		cur:  Current{Teams: teams(store.Team{ID: "a", Alias: "Alpha", Assigned: true, Models: []string{"gpt-4o"}})},
		want: Plan{AddMemberships: []string{"a"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(tc.obs, tc.cur, defaults)
			if len(got.Rename) == 0 {
				got.Rename = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Diff() =\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}

// Applying a plan to the state it came from and diffing again must give an
// empty plan: reconcile is idempotent by construction.
func TestDiffIdempotent(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	obs := Observed{
		UserGroups: []graph.Group{{ID: "a", DisplayName: "A"}, {ID: "b", DisplayName: "B2"}, {ID: "z", DisplayName: "Z"}},
		AppScoped:  true, AppFetchedAt: now,
		AppGroups: []graph.Group{{ID: "a", DisplayName: "A"}, {ID: "b", DisplayName: "B"}, {ID: "c", DisplayName: "C"}},
	}
	cur := Current{
		Teams: map[string]store.Team{
			"b": {ID: "b", Alias: "B", Assigned: true, UpdatedAt: now.Add(-time.Hour)},
			"d": {ID: "d", Alias: "D", Assigned: true, UpdatedAt: now.Add(-time.Hour)},
			"m": {ID: "m", Alias: "M", Assigned: true, UpdatedAt: now.Add(-time.Hour)},
		},
		AssignedIDs: []string{"b", "d", "m"},
		Memberships: []store.Membership{{TeamID: "d", Source: store.SourceEntra}, {TeamID: "m", Source: store.SourceManual}},
	}
	plan := Diff(obs, cur, store.TeamParams{})
	if plan.Empty() {
		t.Fatal("first plan is empty; the fixture should need changes")
	}
	// Apply the plan to an in-memory copy, as the store would, one instant later.
	later := now.Add(time.Second)
	next := Current{Teams: map[string]store.Team{}}
	for id, tm := range cur.Teams {
		next.Teams[id] = tm
	}
	for _, tm := range plan.Create {
		tm.UpdatedAt = later
		next.Teams[tm.ID] = tm
	}
	for id, alias := range plan.Rename {
		tm := next.Teams[id]
		tm.Alias, tm.UpdatedAt = alias, later
		next.Teams[id] = tm
	}
	for _, id := range plan.Unassign {
		tm := next.Teams[id]
		tm.Assigned, tm.UpdatedAt = false, later
		next.Teams[id] = tm
	}
	for _, tm := range next.Teams {
		if tm.Assigned {
			next.AssignedIDs = append(next.AssignedIDs, tm.ID)
		}
	}
	removed := map[string]bool{}
	for _, id := range plan.RemoveMemberships {
		removed[id] = true
	}
	for _, m := range cur.Memberships {
		if !removed[m.TeamID] {
			next.Memberships = append(next.Memberships, m)
		}
	}
	for _, id := range plan.AddMemberships {
		next.Memberships = append(next.Memberships, store.Membership{TeamID: id, Source: store.SourceEntra})
	}
	if again := Diff(obs, next, store.TeamParams{}); !again.Empty() {
		t.Errorf("second Diff = %+v, want empty", again)
	}
}
