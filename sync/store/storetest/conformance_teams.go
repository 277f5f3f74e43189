package storetest

import (
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

var teamTests = []namedTest{
	{"InsertTeamsRoundTrip", testInsertTeamsRoundTrip},
	{"InsertTeamsOnConflictDoNothing", testInsertTeamsOnConflict},
	{"InsertTeamsDuplicateInput", testInsertTeamsDuplicateInput},
	{"TeamNotFound", testTeamNotFound},
	{"TeamsByID", testTeamsByID},
	{"AssignedTeamIDs", testAssignedTeamIDs},
	{"RenameTeamsOnlyChanged", testRenameTeams},
	{"SetAssignedOnlyChanged", testSetAssigned},
	{"TeamsFilterOrderPaging", testTeamsFilter},
}

func insertTeams(t *testing.T, s store.Store, in []store.Team, now time.Time) []string {
	t.Helper()
	var created []string
	inTx(t, s, func(tx store.Tx) error {
		var err error
		created, err = tx.InsertTeams(t.Context(), in, now)
		return err
	})
	return created
}

func getTeam(t *testing.T, s store.Store, id string) store.Team {
	t.Helper()
	tm, err := s.Team(t.Context(), id)
	if err != nil {
		t.Fatalf("Team(%s): %v", id, err)
	}
	return tm
}

func testInsertTeamsRoundTrip(t *testing.T, s store.Store) {
	full := store.Team{
		ID: "g-full", Alias: "Full", MaxBudget: ptr(12.5), BudgetDuration: "7d", Models: []string{"gpt-4o", "o3"},
		TPMLimit: ptr(int64(100000)), RPMLimit: ptr(int64(1 << 40)), Assigned: true,
		CreatedAt: t0.Add(-time.Hour), // ignored: the store sets created_at and updated_at to now
	}
	bare := store.Team{ID: "g-bare", Alias: "Bare"}
	created := insertTeams(t, s, []store.Team{full, bare}, t0)
	equalIDs(t, "created", created, []string{"g-bare", "g-full"})

	full.CreatedAt, full.UpdatedAt = at(0), at(0)
	bare.Models, bare.CreatedAt, bare.UpdatedAt = []string{}, at(0), at(0)
	equalTeam(t, getTeam(t, s, "g-full"), full)
	equalTeam(t, getTeam(t, s, "g-bare"), bare)
}

func testInsertTeamsOnConflict(t *testing.T, s store.Store) {
	insertTeams(t, s, []store.Team{team("a", "A", true), team("b", "B", true)}, t0)
	b2 := store.Team{ID: "b", Alias: "B renamed", MaxBudget: ptr(1.0), Assigned: false}
	created := insertTeams(t, s, []store.Team{b2, team("c", "C", false)}, t0.Add(time.Hour))
	equalIDs(t, "created", created, []string{"c"})
	equalTeam(t, getTeam(t, s, "b"), store.Team{ID: "b", Alias: "B", Models: []string{}, Assigned: true, CreatedAt: at(0), UpdatedAt: at(0)})
	again := insertTeams(t, s, []store.Team{team("a", "A", true), team("b", "B", true), team("c", "C", false)}, t0)
	equalIDs(t, "created on re-insert", again, nil)
}

func testInsertTeamsDuplicateInput(t *testing.T, s store.Store) {
	created := insertTeams(t, s, []store.Team{team("a", "first", true), team("a", "second", true)}, t0)
	equalIDs(t, "created", created, []string{"a"})
	if got := getTeam(t, s, "a").Alias; got != "first" {
		t.Errorf("alias = %q, want the first occurrence's %q", got, "first")
	}
}

func testTeamNotFound(t *testing.T, s store.Store) {
	_, err := s.Team(t.Context(), "nope")
	wantErrIs(t, "Team(nope)", err, store.ErrNotFound)
}

func testTeamsByID(t *testing.T, s store.Store) {
	seedTeams(t, s, "c", "a", "b")
	tests := []struct {
		name string
		ids  []string
		want []string
	}{
		{"some, unordered, duplicated, unknown", []string{"c", "zz", "a", "c"}, []string{"a", "c"}},
		{"none exist", []string{"x", "y"}, nil},
		{"empty input", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []store.Team
			inTx(t, s, func(tx store.Tx) error {
				var err error
				got, err = tx.TeamsByID(t.Context(), tc.ids)
				return err
			})
			equalIDs(t, "TeamsByID", teamIDs(got), tc.want)
			for _, tm := range got {
				if tm.Alias != "Team "+tm.ID || !tm.Assigned {
					t.Errorf("team %s = %+v, want alias %q assigned", tm.ID, tm, "Team "+tm.ID)
				}
			}
		})
	}
}

func testAssignedTeamIDs(t *testing.T, s store.Store) {
	insertTeams(t, s, []store.Team{team("b", "B", true), team("x", "X", false), team("a", "A", true)}, t0)
	var got []string
	inTx(t, s, func(tx store.Tx) error {
		var err error
		got, err = tx.AssignedTeamIDs(t.Context())
		return err
	})
	equalIDs(t, "AssignedTeamIDs", got, []string{"a", "b"})
}

func testRenameTeams(t *testing.T, s store.Store) {
	seedTeams(t, s, "a", "b", "c")
	var renamed []string
	inTx(t, s, func(tx store.Tx) error {
		var err error
		renamed, err = tx.RenameTeams(t.Context(), map[string]string{
			"a":       "Alpha",  // changes
			"b":       "Team b", // already so
			"missing": "Ghost",  // no such team
		}, t0.Add(time.Hour))
		return err
	})
	equalIDs(t, "renamed", renamed, []string{"a"})
	a := getTeam(t, s, "a")
	if a.Alias != "Alpha" {
		t.Errorf("a alias = %q, want Alpha", a.Alias)
	}
	sameTime(t, "a UpdatedAt", a.UpdatedAt, at(time.Hour))
	sameTime(t, "b UpdatedAt", getTeam(t, s, "b").UpdatedAt, at(0))
	if _, err := s.Team(t.Context(), "missing"); err == nil {
		t.Errorf("RenameTeams created team %q", "missing")
	}
}

func testSetAssigned(t *testing.T, s store.Store) {
	insertTeams(t, s, []store.Team{team("a", "A", true), team("b", "B", false), team("c", "C", true)}, t0)
	set := func(ids []string, v bool) []string {
		var changed []string
		inTx(t, s, func(tx store.Tx) error {
			var err error
			changed, err = tx.SetAssigned(t.Context(), ids, v, t0.Add(time.Hour))
			return err
		})
		return changed
	}
	equalIDs(t, "unassign a,b,missing", set([]string{"b", "missing", "a"}, false), []string{"a"})
	equalIDs(t, "unassign again", set([]string{"a", "b"}, false), nil)
	equalIDs(t, "assign a,b,c", set([]string{"c", "b", "a"}, true), []string{"a", "b"})
	sameTime(t, "c UpdatedAt", getTeam(t, s, "c").UpdatedAt, at(0))
	sameTime(t, "b UpdatedAt", getTeam(t, s, "b").UpdatedAt, at(time.Hour))
}

func testTeamsFilter(t *testing.T, s store.Store) {
	insertTeams(t, s, []store.Team{
		team("g1", "Alpha", true),
		team("g2", "beta", true),
		team("g3", "Gamma_1", true),
		team("g4", "Gammax1", true),
		team("g5", "100%", true),
		team("grp-xyz", "Zed", true),
		team("d2", "Dup", true),
		team("d1", "Dup", false),
	}, t0)
	tests := []struct {
		name string
		f    store.TeamFilter
		want []string
	}{
		// Bytewise: digits, then upper case, then lower case; ties by id.
		{"all, ordered by alias then id", store.TeamFilter{}, []string{"g5", "g1", "d1", "d2", "g3", "g4", "grp-xyz", "g2"}},
		{"case-insensitive alias", store.TeamFilter{Query: "ALP"}, []string{"g1"}},
		{"matches id", store.TeamFilter{Query: "XYZ"}, []string{"grp-xyz"}},
		{"underscore is literal", store.TeamFilter{Query: "a_1"}, []string{"g3"}},
		{"percent is literal", store.TeamFilter{Query: "%"}, []string{"g5"}},
		{"no match", store.TeamFilter{Query: "nothing"}, nil},
		{"limit", store.TeamFilter{Limit: 2}, []string{"g5", "g1"}},
		{"limit and offset", store.TeamFilter{Limit: 2, Offset: 2}, []string{"d1", "d2"}},
		{"offset only", store.TeamFilter{Offset: 6}, []string{"grp-xyz", "g2"}},
		{"query with paging", store.TeamFilter{Query: "gamma", Limit: 1, Offset: 1}, []string{"g4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Teams(t.Context(), tc.f)
			if err != nil {
				t.Fatalf("Teams: %v", err)
			}
			equalIDs(t, "Teams", teamIDs(got), tc.want)
		})
	}
}
