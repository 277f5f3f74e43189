package graph

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
)

// These tests drive the client against the fake Entra tenant that `teamgate
// dev` and the end-to-end tests use, so that the two agree on the wire.

func startEntra(t *testing.T, d fakeentra.Directory) (*fakeentra.Tenant, *testEnv) {
	t.Helper()
	tn, err := fakeentra.New(fakeentra.Config{TenantID: "tid", ClientID: "cid", ClientSecret: "fake-secret-value",
		ServicePrincipalID: "sp-1", Directory: d})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tn)
	t.Cleanup(srv.Close)
	tn.SetBaseURL(srv.URL)
	clock := newFakeClock()
	sleeper := &recordingSleeper{clock: clock}
	c, err := New(entraConfig(tn), WithSleep(sleeper.Sleep), WithRandom(func() float64 { return 0.5 }))
	if err != nil {
		t.Fatal(err)
	}
	return tn, &testEnv{Client: c, clock: clock, sleeper: sleeper}
}

func entraConfig(tn *fakeentra.Tenant) Config {
	return Config{TenantID: tn.TenantID(), ClientID: tn.ClientID(), ClientSecret: "fake-secret-value",
		AuthorityHost: tn.AuthorityHost(), GraphURL: tn.GraphURL(), ServicePrincipalID: tn.ServicePrincipalID()}
}

func entraDirectory() fakeentra.Directory {
	d := fakeentra.Directory{Groups: []fakeentra.Group{
		{ID: "g-big", DisplayName: "Big"},
		{ID: "g-small", DisplayName: "Small", MemberOf: []string{"g-big"}},
		{ID: "g-other", DisplayName: "Other"},
	}, AppAssignments: []string{"g-big", "u-4"}}
	for i := range 5 {
		d.Users = append(d.Users, fakeentra.User{ID: fmt.Sprintf("u-%d", i), UPN: fmt.Sprintf("u%d@example.com", i),
			DisplayName: fmt.Sprintf("User %d", i), MemberOf: []string{"g-big"}})
	}
	return d
}

// byID indexes a round's changes.
func byID(d Delta) map[string]string {
	m := map[string]string{}
	for _, c := range d.Changes {
		m[c.ID] = changeString(c)
	}
	return m
}

func TestGroupsDeltaAgainstFakeEntra(t *testing.T) {
	tn, env := startEntra(t, entraDirectory())
	tn.SetDeltaPageSize(2) // g-big's 6 members span three items and two pages

	full, err := env.GroupsDelta(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"g-big":   "g-big name=Big deleted=false added=[{u-0 user} {u-1 user} {u-2 user} {u-3 user} {u-4 user} {g-small group}] removed=[]",
		"g-small": "g-small name=Small deleted=false added=[] removed=[]",
		"g-other": "g-other name=Other deleted=false added=[] removed=[]",
	}
	if got := byID(full); !full.Full || fmt.Sprint(got) != fmt.Sprint(want) || len(full.Changes) != 3 {
		t.Fatalf("full round (Full=%v):\n%v\nwant\n%v", full.Full, got, want)
	}
	if n := tn.Calls("groups/delta"); n < 3 {
		t.Errorf("%d delta requests, want the round to span pages", n)
	}

	members, err := env.GroupMembers(t.Context(), "g-big")
	if err != nil || fmt.Sprint(members) != "[{u-0 user} {u-1 user} {u-2 user} {u-3 user} {u-4 user} {g-small group}]" {
		t.Fatalf("GroupMembers = %v, %v", members, err)
	}

	tn.RenameGroup("g-other", "Renamed")
	tn.AddMember("g-other", "u-1")
	tn.RemoveMember("g-big", "u-0")
	tn.DeleteGroup("g-small")
	tn.AddGroup("g-new", "New")
	tn.FailNext("groups/delta", 1, http.StatusTooManyRequests, "3") // retried
	inc, err := env.GroupsDelta(t.Context(), full.DeltaLink)
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]string{
		"g-big":   "g-big name=- deleted=false added=[] removed=[{u-0 user} {g-small group}]",
		"g-other": "g-other name=Renamed deleted=false added=[{u-1 user}] removed=[]",
		"g-new":   "g-new name=New deleted=false added=[] removed=[]",
		"g-small": "g-small name=- deleted=true added=[] removed=[]",
	}
	if got := byID(inc); inc.Full || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("incremental round:\n%v\nwant\n%v", got, want)
	}
	if slept := env.sleeper.Slept(); !slices.Equal(slept, []time.Duration{3 * time.Second}) {
		t.Errorf("slept %v, want the Retry-After once", slept)
	}

	tn.ExpireDeltaTokens()
	if _, err := env.GroupsDelta(t.Context(), inc.DeltaLink); !errors.Is(err, ErrDeltaExpired) {
		t.Fatalf("after ExpireDeltaTokens: %v, want ErrDeltaExpired", err)
	}
	if again, err := env.GroupsDelta(t.Context(), ""); err != nil || len(again.Changes) != 3 {
		t.Fatalf("full round after expiry: %v, %v", again.Changes, err)
	}

	// Permissions apply to tokens issued from now on: a new client.
	tn.SetAppPermissions("User.Read.All", "Application.Read.All")
	other, err := New(entraConfig(tn))
	if err != nil {
		t.Fatal(err)
	}
	var pe *PermissionError
	if _, err := other.GroupsDelta(t.Context(), ""); !errors.As(err, &pe) || pe.Permission != PermGroupMemberReadAll {
		t.Fatalf("without GroupMember.Read.All: %v", err)
	}
}

func TestUserAndAssignmentsAgainstFakeEntra(t *testing.T) {
	tn, env := startEntra(t, entraDirectory())
	u, err := env.User(t.Context(), "u-1")
	if err != nil || u.AccountEnabled == nil || !*u.AccountEnabled || u.UserPrincipalName != "u1@example.com" {
		t.Fatalf("User: %+v, %v", u, err)
	}
	tn.DisableUser("u-1")
	if u, err := env.User(t.Context(), "u-1"); err != nil || u.AccountEnabled == nil || *u.AccountEnabled {
		t.Fatalf("disabled User: %+v, %v", u, err)
	}
	tn.DeleteUser("u-1")
	if _, err := env.User(t.Context(), "u-1"); !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("deleted User: %v, want ErrUserNotFound", err)
	}

	a, err := env.AppAssignments(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.Groups) != "[{g-big Big}]" || !slices.Equal(a.UserIDs, []string{"u-4"}) || a.AssignmentRequired {
		t.Fatalf("assignments = %+v", a)
	}
	tn.SetAssignmentRequired(true)
	tn.DeleteUser("u-4")
	if a, _ := env.AppAssignments(t.Context(), false); a.AssignmentRequired {
		t.Error("the cache was bypassed without fresh")
	}
	a, err = env.AppAssignments(t.Context(), true)
	if err != nil || !a.AssignmentRequired || len(a.UserIDs) != 0 {
		t.Fatalf("fresh assignments = %+v, %v", a, err)
	}
}
