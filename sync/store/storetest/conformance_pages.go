package storetest

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// pagesTests cover PagesStore and PagesTx: what teamgate's own pages read
// and write.
var pagesTests = []namedTest{
	{"UserPrefsDefaults", testUserPrefsDefaults},
	{"SetDefaultTeamOnlyToOwnTeam", testSetDefaultTeam},
	{"SetInAdminGroup", testSetInAdminGroup},
	{"TeamSummariesCountsAndPages", testTeamSummaries},
	{"TeamSummariesThousandsOfTeams", testTeamSummariesThousands},
	{"TeamAliasesAndMemberDetails", testTeamAliasesAndMembers},
	{"UserSummariesSearchAndCount", testUserSummaries},
	{"UserByLogin", testUserByLogin},
	{"FindSyncEventsFilters", testFindSyncEvents},
	{"AdminMemberChangesAreLogged", testAdminMemberChanges},
}

func prefs(t *testing.T, s store.Store, userID string) store.UserPrefs {
	t.Helper()
	p, err := s.UserPrefs(t.Context(), userID)
	if err != nil {
		t.Fatalf("UserPrefs(%s): %v", userID, err)
	}
	return p
}

func testUserPrefsDefaults(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	if p := prefs(t, s, "u1"); p != (store.UserPrefs{}) {
		t.Errorf("new user's prefs = %+v, want zero", p)
	}
	_, err := s.UserPrefs(t.Context(), "nobody")
	wantErrIs(t, "UserPrefs(unknown)", err, store.ErrNotFound)
}

func testSetDefaultTeam(t *testing.T, s store.Store) {
	ctx := t.Context()
	seedUsers(t, s, "u1", "u2")
	seedTeams(t, s, "t1", "t2")
	seedMemberships(t, s, "u1", store.SourceEntra, "t1")

	if err := s.SetDefaultTeam(ctx, "u1", "t1"); err != nil {
		t.Fatalf("SetDefaultTeam(own team): %v", err)
	}
	if got := prefs(t, s, "u1").DefaultTeamID; got != "t1" {
		t.Errorf("default team = %q, want t1", got)
	}
	// Setting it again is fine (the row matches, nothing changes).
	if err := s.SetDefaultTeam(ctx, "u1", "t1"); err != nil {
		t.Errorf("SetDefaultTeam again: %v", err)
	}
	for _, tc := range []struct{ name, user, team string }{
		{"a team the user is not in", "u1", "t2"},
		{"an unknown team", "u1", "nope"},
		{"an unknown user", "nobody", "t1"},
	} {
		err := s.SetDefaultTeam(ctx, tc.user, tc.team)
		wantErrIs(t, "SetDefaultTeam("+tc.name+")", err, store.ErrNotFound)
	}
	if got := prefs(t, s, "u1").DefaultTeamID; got != "t1" {
		t.Errorf("a refused change altered the default team: %q", got)
	}
	if err := s.SetDefaultTeam(ctx, "u1", ""); err != nil {
		t.Fatalf("clear default team: %v", err)
	}
	if got := prefs(t, s, "u1").DefaultTeamID; got != "" {
		t.Errorf("cleared default team = %q", got)
	}
}

func testSetInAdminGroup(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1", "u2")
	for _, in := range []bool{true, true, false, true} {
		inTx(t, s, func(tx store.Tx) error { return tx.SetInAdminGroup(t.Context(), "u1", in) })
		if got := prefs(t, s, "u1").InAdminGroup; got != in {
			t.Errorf("in admin group = %v, want %v", got, in)
		}
	}
	if prefs(t, s, "u2").InAdminGroup {
		t.Error("another user's flag changed")
	}
	// An unknown user is not an error: the reconcile writes the user first.
	inTx(t, s, func(tx store.Tx) error { return tx.SetInAdminGroup(t.Context(), "nobody", true) })
}

func testTeamSummaries(t *testing.T, s store.Store) {
	ctx := t.Context()
	ids := make([]string, 25)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%02d", i)
	}
	seedTeams(t, s, ids...) // aliased "Team t00" …
	seedUsers(t, s, "u1", "u2")
	seedMemberships(t, s, "u1", store.SourceEntra, "t00", "t01")
	seedMemberships(t, s, "u2", store.SourceEntra, "t00")

	var seen []string
	for off := 0; off < 30; off += 10 {
		page, err := s.TeamSummaries(ctx, store.TeamFilter{Limit: 10, Offset: off})
		if err != nil {
			t.Fatalf("TeamSummaries(offset %d): %v", off, err)
		}
		for _, ts := range page {
			seen = append(seen, ts.ID)
			want := map[string]int{"t00": 2, "t01": 1}[ts.ID]
			if ts.Members != want {
				t.Errorf("team %s members = %d, want %d", ts.ID, ts.Members, want)
			}
		}
	}
	equalIDs(t, "teams over three pages", seen, ids)

	for _, tc := range []struct {
		query string
		want  int
	}{{"", 25}, {"team t1", 10}, {"T2", 5}, {"t24", 1}, {"%", 0}, {"zzz", 0}} {
		n, err := s.CountTeams(ctx, store.TeamFilter{Query: tc.query, Limit: 1, Offset: 3})
		if err != nil || n != tc.want {
			t.Errorf("CountTeams(%q) = %d, %v; want %d", tc.query, n, err, tc.want)
		}
		got, err := s.TeamSummaries(ctx, store.TeamFilter{Query: tc.query})
		if err != nil || len(got) != tc.want {
			t.Errorf("TeamSummaries(%q) = %d teams, %v; want %d", tc.query, len(got), err, tc.want)
		}
	}
}

// The admin team list of a large tenant: 2,100 teams, paged, searched and
// counted, with the member counts of the page.
func testTeamSummariesThousands(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 2100
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%04d", i) // aliased "Team t0000" …, so alias order is id order
	}
	seedTeams(t, s, ids...)
	seedUsers(t, s, "u1", "u2")
	seedMemberships(t, s, "u1", store.SourceEntra, "t1450", "t1499", "t2099")
	seedMemberships(t, s, "u2", store.SourceEntra, "t1450")

	for _, tc := range []struct {
		name          string
		f             store.TeamFilter
		count         int
		first, last   string // of the page; "" for an empty page
		pageLen       int
		membersOfLast int
	}{
		{"first page", store.TeamFilter{Limit: 50}, n, "t0000", "t0049", 50, 0},
		{"page 30", store.TeamFilter{Limit: 50, Offset: 1450}, n, "t1450", "t1499", 50, 1},
		{"last page", store.TeamFilter{Limit: 50, Offset: 2050}, n, "t2050", "t2099", 50, 1},
		{"past the end", store.TeamFilter{Limit: 50, Offset: n}, n, "", "", 0, 0},
		{"search", store.TeamFilter{Query: "TEAM T19", Limit: 50}, 100, "t1900", "t1949", 50, 0},
		{"search, page two", store.TeamFilter{Query: "t19", Limit: 50, Offset: 50}, 100, "t1950", "t1999", 50, 0},
		{"search by id", store.TeamFilter{Query: "t2099", Limit: 50}, 1, "t2099", "t2099", 1, 1},
		{"search without a match", store.TeamFilter{Query: "t9", Limit: 50}, 0, "", "", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			page, err := s.TeamSummaries(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			count, err := s.CountTeams(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("page and count in %v", time.Since(start)) // for the record; no bound (shared machines)
			if count != tc.count || len(page) != tc.pageLen {
				t.Fatalf("count %d, page of %d; want %d, %d", count, len(page), tc.count, tc.pageLen)
			}
			if tc.pageLen == 0 {
				return
			}
			first, last := page[0], page[len(page)-1]
			if first.ID != tc.first || last.ID != tc.last || last.Members != tc.membersOfLast {
				t.Errorf("page %s … %s (%d members), want %s … %s (%d)", first.ID, last.ID, last.Members, tc.first, tc.last, tc.membersOfLast)
			}
			if tc.first == "t1450" && first.Members != 2 {
				t.Errorf("t1450 members = %d, want 2", first.Members)
			}
		})
	}
}

func testTeamAliasesAndMembers(t *testing.T, s store.Store) {
	ctx := t.Context()
	seedTeams(t, s, "t1", "t2")
	seedUsers(t, s, "zed", "amy")
	seedMemberships(t, s, "zed", store.SourceEntra, "t1")
	if err := s.AddManualMembership(ctx, "t1", "amy", "user", at(time.Second)); err != nil {
		t.Fatal(err)
	}
	aliases, err := s.TeamAliases(ctx, []string{"t2", "t1", "gone", "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"t1": "Team t1", "t2": "Team t2"}; !maps.Equal(aliases, want) {
		t.Errorf("TeamAliases = %v, want %v", aliases, want)
	}
	if empty, err := s.TeamAliases(ctx, nil); err != nil || len(empty) != 0 {
		t.Errorf("TeamAliases(nil) = %v, %v", empty, err)
	}
	members, err := s.TeamMemberDetails(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range members {
		got = append(got, m.UserID+"/"+m.Source+"/"+m.Email+"/"+m.DisplayName)
	}
	want := []string{"amy/manual/amy@example.com/User amy", "zed/entra/zed@example.com/User zed"}
	equalIDs(t, "members by email", got, want)
	if none, err := s.TeamMemberDetails(ctx, "t2"); err != nil || len(none) != 0 {
		t.Errorf("members of an empty team = %v, %v", none, err)
	}
}

func testUserSummaries(t *testing.T, s store.Store) {
	ctx := t.Context()
	seedUsers(t, s, "carol", "alice", "bob")
	seedTeams(t, s, "t1", "t2")
	seedMemberships(t, s, "alice", store.SourceEntra, "t1", "t2")
	inTx(t, s, func(tx store.Tx) error { return tx.SetInAdminGroup(ctx, "bob", true) })
	if err := s.SetDefaultTeam(ctx, "alice", "t2"); err != nil {
		t.Fatal(err)
	}

	all, err := s.UserSummaries(ctx, store.UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range all {
		got = append(got, fmt.Sprintf("%s/%d/%v/%s", u.ID, u.Teams, u.InAdminGroup, u.DefaultTeamID))
	}
	equalIDs(t, "users by email", got, []string{"alice/2/false/t2", "bob/0/true/", "carol/0/false/"})

	page, err := s.UserSummaries(ctx, store.UserFilter{Limit: 1, Offset: 1})
	if err != nil || len(page) != 1 || page[0].ID != "bob" {
		t.Errorf("second page of one = %v, %v", page, err)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"ALICE@", []string{"alice"}}, // email, any case
		{"onmicrosoft", nil},          // every UPN matches: all three
		{"user c", []string{"carol"}}, // display name
		{"_", []string{}},             // literal, not a wildcard
		{"nobody-at-all", []string{}},
	} {
		us, err := s.UserSummaries(ctx, store.UserFilter{Query: tc.query})
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.CountUsers(ctx, store.UserFilter{Query: tc.query})
		if err != nil || n != len(us) {
			t.Errorf("CountUsers(%q) = %d, %v; listed %d", tc.query, n, err, len(us))
		}
		if tc.want == nil {
			if len(us) != 3 {
				t.Errorf("query %q matched %d users, want 3", tc.query, len(us))
			}
			continue
		}
		var ids []string
		for _, u := range us {
			ids = append(ids, u.ID)
		}
		equalIDs(t, fmt.Sprintf("users matching %q", tc.query), ids, tc.want)
	}
}

func testUserByLogin(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1", "u2")
	for _, tc := range []struct{ login, want string }{
		{"u1", "u1"},
		{"U2@EXAMPLE.COM", "u2"},
		{" u2@example.onmicrosoft.com ", "u2"},
	} {
		u, err := s.UserByLogin(t.Context(), tc.login)
		if err != nil || u.ID != tc.want {
			t.Errorf("UserByLogin(%q) = %q, %v; want %q", tc.login, u.ID, err, tc.want)
		}
	}
	for _, login := range []string{"", "nobody@example.com", "U1"} {
		_, err := s.UserByLogin(t.Context(), login)
		wantErrIs(t, "UserByLogin("+login+")", err, store.ErrNotFound)
	}
}

func testFindSyncEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	seedUsers(t, s, "u1")
	record := func(user, outcome string, d time.Duration) {
		t.Helper()
		if err := s.RecordSyncEvent(ctx, store.SyncEvent{UserID: user, At: at(d), Outcome: outcome}); err != nil {
			t.Fatal(err)
		}
	}
	record("u1", store.OutcomeOK, 1*time.Second)
	record("u1", store.OutcomeError, 2*time.Second)
	record("ghost", store.OutcomeOK, 3*time.Second) // a user never written
	seedTeams(t, s, "t1")
	if err := s.AddMemberAsAdmin(ctx, "t1", "u1", "user", "admin-1", at(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Kinds other than sign-in, recorded before the others so that the
	// cases above keep their order; an event without Kind is a sign-in.
	for _, e := range []store.SyncEvent{
		{At: at(-3 * time.Second), Outcome: store.OutcomeOK, Kind: store.EventBackground}, // a whole run
		{UserID: "u1", At: at(-2 * time.Second), Outcome: store.OutcomeError, Kind: store.EventBackground},
		{UserID: "u1", At: at(-1 * time.Second), Outcome: store.OutcomeOK, Kind: store.EventRevalidate},
	} {
		if err := s.RecordSyncEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name string
		q    store.EventQuery
		want []string // user/outcome, newest first
	}{
		{"all", store.EventQuery{}, []string{"u1/admin", "ghost/ok", "u1/error", "u1/ok", "u1/ok/revalidate", "u1/error/background", "/ok/background"}},
		{"by user", store.EventQuery{UserID: "u1"}, []string{"u1/admin", "u1/error", "u1/ok", "u1/ok/revalidate", "u1/error/background"}},
		{"by outcome", store.EventQuery{Outcome: store.OutcomeOK}, []string{"ghost/ok", "u1/ok", "u1/ok/revalidate", "/ok/background"}},
		{"user and outcome", store.EventQuery{UserID: "u1", Outcome: store.OutcomeError}, []string{"u1/error", "u1/error/background"}},
		{"syncs only", store.EventQuery{UserID: "u1", ExcludeAdmin: true, Limit: 1}, []string{"u1/error"}},
		{"without admin changes", store.EventQuery{ExcludeAdmin: true}, []string{"ghost/ok", "u1/error", "u1/ok", "u1/ok/revalidate", "u1/error/background", "/ok/background"}},
		{"a user without admin changes", store.EventQuery{UserID: "u1", ExcludeAdmin: true}, []string{"u1/error", "u1/ok", "u1/ok/revalidate", "u1/error/background"}},
		{"sign-ins (stored for an empty kind)", store.EventQuery{Kind: store.EventSignIn}, []string{"ghost/ok", "u1/error", "u1/ok"}},
		{"background", store.EventQuery{Kind: store.EventBackground}, []string{"u1/error/background", "/ok/background"}},
		{"re-validations", store.EventQuery{Kind: store.EventRevalidate}, []string{"u1/ok/revalidate"}},
		{"admin changes by kind", store.EventQuery{Kind: store.EventAdmin}, []string{"u1/admin"}},
		{"admin kind without admin changes", store.EventQuery{Kind: store.EventAdmin, ExcludeAdmin: true}, nil},
		{"kind and user", store.EventQuery{Kind: store.EventBackground, UserID: "u1"}, []string{"u1/error/background"}},
		{"kind and outcome", store.EventQuery{Kind: store.EventBackground, Outcome: store.OutcomeOK}, []string{"/ok/background"}},
		{"unknown kind", store.EventQuery{Kind: "nonsense"}, nil},
		{"kind, page two", store.EventQuery{Kind: store.EventBackground, Limit: 1, Offset: 1}, []string{"/ok/background"}},
		{"page two", store.EventQuery{Limit: 2, Offset: 2}, []string{"u1/error", "u1/ok"}},
		{"past the end", store.EventQuery{Offset: 10}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := s.FindSyncEvents(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range evs {
				name := e.UserID + "/" + e.Outcome
				if e.Kind != store.EventSignIn && e.Kind != store.EventAdmin {
					name += "/" + e.Kind
				}
				got = append(got, name)
			}
			equalIDs(t, "events", got, tc.want)
			count := tc.q
			count.Limit, count.Offset = 0, 0
			n, err := s.CountSyncEvents(ctx, count)
			if err != nil {
				t.Fatal(err)
			}
			if tc.q.Limit == 0 && tc.q.Offset == 0 && n != len(tc.want) {
				t.Errorf("CountSyncEvents = %d, want %d", n, len(tc.want))
			}
			if tc.q.Kind != "" || tc.q.ExcludeAdmin {
				// The filter must hold in the count too, whatever the page.
				all := count
				all.Limit = 1000
				evs, err := s.FindSyncEvents(ctx, all)
				if err != nil {
					t.Fatal(err)
				}
				if n != len(evs) {
					t.Errorf("CountSyncEvents = %d, FindSyncEvents finds %d", n, len(evs))
				}
			}
		})
	}
	evs, err := s.FindSyncEvents(ctx, store.EventQuery{Limit: 1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("newest event: %v, %v", evs, err)
	}
	if e := evs[0]; e.Actor != "admin-1" || e.UserEmail != "u1@example.com" || e.DisplayName != "User u1" {
		t.Errorf("admin event = %+v", e)
	}
}

func testAdminMemberChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	seedUsers(t, s, "u1")
	seedTeams(t, s, "t1")
	seedMemberships(t, s, "u1", store.SourceEntra, "t1")

	// Adding an existing Entra member makes the membership manual.
	if err := s.AddMemberAsAdmin(ctx, "t1", "u1", "user", "boss", at(time.Second)); err != nil {
		t.Fatal(err)
	}
	ms, _ := s.TeamMembers(ctx, "t1")
	if len(ms) != 1 || ms[0].Source != store.SourceManual {
		t.Errorf("members after admin add = %+v", ms)
	}
	if err := s.RemoveMemberAsAdmin(ctx, "t1", "u1", "boss", at(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if ms, _ := s.TeamMembers(ctx, "t1"); len(ms) != 0 {
		t.Errorf("members after admin removal = %+v", ms)
	}
	// Failures change nothing and log nothing.
	wantErrIs(t, "remove a non-member", s.RemoveMemberAsAdmin(ctx, "t1", "u1", "boss", at(3*time.Second)), store.ErrNotFound)
	wantErrIs(t, "add to an unknown team", s.AddMemberAsAdmin(ctx, "nope", "u1", "user", "boss", at(3*time.Second)), store.ErrNotFound)
	wantErrIs(t, "add an unknown user", s.AddMemberAsAdmin(ctx, "t1", "nobody", "user", "boss", at(3*time.Second)), store.ErrNotFound)

	evs, err := s.FindSyncEvents(ctx, store.EventQuery{Outcome: store.OutcomeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("admin events = %+v, want 2", evs)
	}
	removed, added := evs[0], evs[1]
	if !slices.Equal(removed.MembershipsRemoved, []string{"t1"}) || removed.Actor != "boss" || !removed.At.Equal(at(2*time.Second)) ||
		!slices.Equal(added.MembershipsAdded, []string{"t1"}) || added.Actor != "boss" || added.UserID != "u1" {
		t.Errorf("admin events = %+v / %+v", removed, added)
	}
	// Admin events are sync events like any other, with outcome "admin".
	if all := events(t, s, store.EventFilter{UserID: "u1"}); len(all) != 2 || all[0].Outcome != store.OutcomeAdmin {
		t.Errorf("SyncEvents = %+v", all)
	}
}
