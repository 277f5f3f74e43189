package storetest

import (
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

var membershipTests = []namedTest{
	{"AddMembershipsReportsOnlyAdded", testAddMemberships},
	{"AddMembershipsUnknownTeam", testAddMembershipsUnknownTeam},
	{"RemoveMembershipsLeavesManual", testRemoveMembershipsLeavesManual},
	{"AddManualMembership", testAddManualMembership},
	{"AddManualMembershipUnknown", testAddManualMembershipUnknown},
	{"RemoveMembership", testRemoveMembership},
	{"TeamMembers", testTeamMembers},
	{"MembersOfTeams", testMembersOfTeams},
	{"UserTeamsOrder", testUserTeamsOrder},
}

func userMemberships(t *testing.T, s store.Store, userID string) []store.Membership {
	t.Helper()
	var ms []store.Membership
	inTx(t, s, func(tx store.Tx) error {
		var err error
		ms, err = tx.UserMemberships(t.Context(), userID)
		return err
	})
	return ms
}

func testAddMemberships(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1", "u2")
	seedTeams(t, s, "a", "b", "c")
	var added []string
	inTx(t, s, func(tx store.Tx) error {
		var err error
		added, err = tx.AddMemberships(t.Context(), "u1", []string{"c", "a", "a"}, "user", store.SourceEntra, t0)
		return err
	})
	equalIDs(t, "added", added, []string{"a", "c"})
	inTx(t, s, func(tx store.Tx) error {
		var err error
		added, err = tx.AddMemberships(t.Context(), "u1", []string{"a", "b", "c"}, "user", store.SourceEntra, t0.Add(time.Hour))
		return err
	})
	equalIDs(t, "added again", added, []string{"b"})

	ms := userMemberships(t, s, "u1")
	equalIDs(t, "UserMemberships", membershipKeys(ms), []string{"a/u1/entra", "b/u1/entra", "c/u1/entra"})
	for _, m := range ms {
		if m.Role != "user" {
			t.Errorf("membership %s role = %q, want user", m.TeamID, m.Role)
		}
	}
	sameTime(t, "a AddedAt", ms[0].AddedAt, at(0))
	sameTime(t, "b AddedAt", ms[1].AddedAt, at(time.Hour))
	equalIDs(t, "u2 memberships", membershipKeys(userMemberships(t, s, "u2")), nil)
}

func testAddMembershipsUnknownTeam(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	seedTeams(t, s, "a")
	err := s.InTx(t.Context(), func(tx store.Tx) error {
		_, err := tx.AddMemberships(t.Context(), "u1", []string{"a", "ghost"}, "user", store.SourceEntra, t0)
		return err
	})
	wantErrIs(t, "AddMemberships with an unknown team", err, store.ErrNotFound)
	equalIDs(t, "memberships after the failed transaction", membershipKeys(userMemberships(t, s, "u1")), nil)
}

func testRemoveMembershipsLeavesManual(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1", "u2")
	seedTeams(t, s, "a", "b", "c")
	seedMemberships(t, s, "u1", store.SourceEntra, "a", "b")
	seedMemberships(t, s, "u1", store.SourceManual, "c")
	seedMemberships(t, s, "u2", store.SourceEntra, "a")
	var removed []string
	inTx(t, s, func(tx store.Tx) error {
		var err error
		removed, err = tx.RemoveMemberships(t.Context(), "u1", []string{"a", "c", "ghost"}, store.SourceEntra)
		return err
	})
	equalIDs(t, "removed", removed, []string{"a"})
	equalIDs(t, "u1 memberships", membershipKeys(userMemberships(t, s, "u1")), []string{"b/u1/entra", "c/u1/manual"})
	equalIDs(t, "u2 memberships", membershipKeys(userMemberships(t, s, "u2")), []string{"a/u2/entra"})
	inTx(t, s, func(tx store.Tx) error {
		var err error
		removed, err = tx.RemoveMemberships(t.Context(), "u1", []string{"a"}, store.SourceEntra)
		return err
	})
	equalIDs(t, "removed again", removed, nil)
}

func testAddManualMembership(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	seedTeams(t, s, "a", "b")
	seedMemberships(t, s, "u1", store.SourceEntra, "a")
	if err := s.AddManualMembership(t.Context(), "a", "u1", "admin", t0.Add(time.Hour)); err != nil {
		t.Fatalf("AddManualMembership(a): %v", err)
	}
	if err := s.AddManualMembership(t.Context(), "b", "u1", "user", t0.Add(time.Hour)); err != nil {
		t.Fatalf("AddManualMembership(b): %v", err)
	}
	ms := userMemberships(t, s, "u1")
	equalIDs(t, "memberships", membershipKeys(ms), []string{"a/u1/manual", "b/u1/manual"})
	if ms[0].Role != "admin" {
		t.Errorf("a role = %q, want admin", ms[0].Role)
	}
	// An entra removal no longer touches them.
	inTx(t, s, func(tx store.Tx) error {
		removed, err := tx.RemoveMemberships(t.Context(), "u1", []string{"a", "b"}, store.SourceEntra)
		equalIDs(t, "removed", removed, nil)
		return err
	})
	equalIDs(t, "memberships after entra removal", membershipKeys(userMemberships(t, s, "u1")), []string{"a/u1/manual", "b/u1/manual"})
}

func testAddManualMembershipUnknown(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	seedTeams(t, s, "a")
	tests := []struct{ name, team, user string }{
		{"unknown team", "ghost", "u1"},
		{"unknown user", "a", "ghost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.AddManualMembership(t.Context(), tc.team, tc.user, "user", t0)
			wantErrIs(t, "AddManualMembership", err, store.ErrNotFound)
		})
	}
}

func testRemoveMembership(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	seedTeams(t, s, "a", "b")
	seedMemberships(t, s, "u1", store.SourceEntra, "a")
	seedMemberships(t, s, "u1", store.SourceManual, "b")
	for _, team := range []string{"a", "b"} {
		if err := s.RemoveMembership(t.Context(), team, "u1"); err != nil {
			t.Errorf("RemoveMembership(%s): %v", team, err)
		}
	}
	equalIDs(t, "memberships", membershipKeys(userMemberships(t, s, "u1")), nil)
	wantErrIs(t, "RemoveMembership again", s.RemoveMembership(t.Context(), "a", "u1"), store.ErrNotFound)
}

func testTeamMembers(t *testing.T, s store.Store) {
	seedUsers(t, s, "u2", "u1", "u3")
	seedTeams(t, s, "a", "b")
	seedMemberships(t, s, "u2", store.SourceEntra, "a")
	seedMemberships(t, s, "u1", store.SourceManual, "a")
	seedMemberships(t, s, "u3", store.SourceEntra, "b")
	ms, err := s.TeamMembers(t.Context(), "a")
	if err != nil {
		t.Fatalf("TeamMembers: %v", err)
	}
	equalIDs(t, "TeamMembers(a)", membershipKeys(ms), []string{"a/u1/manual", "a/u2/entra"})
	ms, err = s.TeamMembers(t.Context(), "ghost")
	if err != nil {
		t.Fatalf("TeamMembers(ghost): %v", err)
	}
	equalIDs(t, "TeamMembers(ghost)", membershipKeys(ms), nil)
}

func testMembersOfTeams(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1", "u2")
	seedTeams(t, s, "a", "b", "c")
	seedMemberships(t, s, "u2", store.SourceEntra, "a", "c")
	seedMemberships(t, s, "u1", store.SourceEntra, "a", "b")
	tests := []struct {
		name string
		ids  []string
		want []string
	}{
		{"nil means all teams", nil, []string{"a/u1/entra", "a/u2/entra", "b/u1/entra", "c/u2/entra"}},
		{"empty means none", []string{}, nil},
		{"listed, unknown ignored", []string{"c", "ghost", "a"}, []string{"a/u1/entra", "a/u2/entra", "c/u2/entra"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := s.MembersOfTeams(t.Context(), tc.ids)
			if err != nil {
				t.Fatalf("MembersOfTeams: %v", err)
			}
			equalIDs(t, "MembersOfTeams", membershipKeys(ms), tc.want)
		})
	}
}

func testUserTeamsOrder(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1", "u2")
	insertTeams(t, s, []store.Team{
		team("t1", "beta", true), team("t2", "Alpha", true), team("t4", "Same", true),
		team("t3", "Same", false), team("t5", "Other user", true),
	}, t0)
	seedMemberships(t, s, "u1", store.SourceEntra, "t1", "t2", "t4")
	seedMemberships(t, s, "u1", store.SourceManual, "t3")
	seedMemberships(t, s, "u2", store.SourceEntra, "t5")
	got, err := s.UserTeams(t.Context(), "u1")
	if err != nil {
		t.Fatalf("UserTeams: %v", err)
	}
	equalIDs(t, "UserTeams", teamIDs(got), []string{"t2", "t3", "t4", "t1"})
	if len(got) > 0 && (got[0].Alias != "Alpha" || !got[0].Assigned) {
		t.Errorf("UserTeams[0] = %+v, want the full team row", got[0])
	}
	none, err := s.UserTeams(t.Context(), "ghost")
	if err != nil || len(none) != 0 {
		t.Errorf("UserTeams(ghost) = %v, %v; want none", none, err)
	}
}
