package graph

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// appAssignments is 150 assigned groups (one holding two app roles), mixed
// with directly assigned users and service principals.
func appAssignments() []any {
	var items []any
	for i := range 150 {
		items = append(items, assignment("Group", fmt.Sprintf("g-%03d", i), fmt.Sprintf("Team %d", i)))
		if i%10 == 0 {
			items = append(items, assignment("User", fmt.Sprintf("u-%d", i), "Some User"),
				assignment("ServicePrincipal", fmt.Sprintf("sp-%d", i), "Some App"))
		}
	}
	second := assignment("Group", "g-007", "Team 7")
	second["id"] = "assign-g-007-second-role"
	return append(items, second)
}

func TestAppGroupsPaging(t *testing.T) {
	ft := newFakeTenant(t)
	col := &collection{t: t, items: appAssignments(), maxPage: 100}
	ft.Graph.Handle("GET /v1.0/servicePrincipals/"+testSP+"/appRoleAssignedTo", col)
	env := newTestEnv(t, ft, nil)

	got, err := env.AppGroups(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 150 {
		t.Fatalf("got %d groups, want 150", len(got))
	}
	for i, g := range got {
		if want := (Group{ID: fmt.Sprintf("g-%03d", i), DisplayName: fmt.Sprintf("Team %d", i)}); g != want {
			t.Fatalf("group %d = %+v, want %+v", i, g, want)
		}
	}
	if col.Pages() != 2 {
		t.Errorf("pages = %d, want 2", col.Pages())
	}
	if first := env.tenant.Requests()[0]; first != "/v1.0/servicePrincipals/"+testSP+"/appRoleAssignedTo?$top=999" {
		t.Errorf("first request = %s", first)
	}
}

func TestAppGroupsCache(t *testing.T) {
	ft := newFakeTenant(t)
	col := &collection{t: t, items: []any{assignment("Group", "g-1", "One")}, maxPage: 999}
	ft.Graph.Handle("GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo", col)
	env := newTestEnv(t, ft, func(c *Config) { c.AppGroupsTTL = time.Minute })
	start := env.clock.Now()

	steps := []struct {
		name      string
		advance   time.Duration
		wantPages int
		wantAt    time.Time
	}{
		{name: "cold cache fetches", wantPages: 1, wantAt: start},
		{name: "hit within TTL", advance: 59 * time.Second, wantPages: 1, wantAt: start},
		{name: "refetch after TTL", advance: time.Second, wantPages: 2, wantAt: start.Add(time.Minute)},
		{name: "hit again", advance: 30 * time.Second, wantPages: 2, wantAt: start.Add(time.Minute)},
	}
	for _, s := range steps {
		env.clock.Advance(s.advance)
		got, at, err := env.AppGroupsAt(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if len(got) != 1 || col.Pages() != s.wantPages || !at.Equal(s.wantAt) {
			t.Errorf("%s: got %v at %v after %d fetches; want 1 group at %v after %d", s.name, got, at, col.Pages(), s.wantAt, s.wantPages)
		}
		got[0].DisplayName = "changed by caller" // must not reach the cache
	}
	if got, _ := env.AppGroups(t.Context()); got[0].DisplayName != "One" {
		t.Errorf("cache was changed through a returned slice: %v", got)
	}
}

func TestAppGroupsFailureNotCached(t *testing.T) {
	ft := newFakeTenant(t)
	var calls atomic.Int32
	ft.Graph.HandleFunc("GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			graphError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": []any{assignment("Group", "g-1", "One")}})
	})
	env := newTestEnv(t, ft, nil)
	var pe *PermissionError
	if _, err := env.AppGroups(t.Context()); !errors.As(err, &pe) || pe.Permission != PermApplicationReadAll {
		t.Fatalf("first call: %v, want a PermissionError naming %s", err, PermApplicationReadAll)
	}
	if got, err := env.AppGroups(t.Context()); err != nil || len(got) != 1 {
		t.Fatalf("second call: %v, %v; the failure was cached", got, err)
	}
}

func TestAppGroupsConcurrentCallersShareOneFetch(t *testing.T) {
	ft := newFakeTenant(t)
	var fetches atomic.Int32
	release := make(chan struct{})
	ft.Graph.HandleFunc("GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo", func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		<-release
		writeJSON(w, http.StatusOK, map[string]any{"value": appAssignments()})
	})
	env := newTestEnv(t, ft, nil)

	const callers = 20
	var started, done sync.WaitGroup
	results := make([][]Group, callers)
	errs := make([]error, callers)
	for i := range callers {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			results[i], errs[i] = env.AppGroups(t.Context())
		}()
	}
	started.Wait()
	close(release)
	done.Wait()

	for i := range callers {
		if errs[i] != nil || len(results[i]) != 150 || !slices.Equal(results[i], results[0]) {
			t.Fatalf("caller %d: %d groups, %v", i, len(results[i]), errs[i])
		}
	}
	// Late callers either join the flight or hit the cache: never a second fetch.
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
	if n := env.tenant.TokensIssued(); n != 1 {
		t.Errorf("tokens issued = %d, want 1", n)
	}
}

func TestAppGroupsLimitedInformation(t *testing.T) {
	ft := newFakeTenant(t)
	ft.Graph.HandleFunc("GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"value": []any{
			map[string]any{"id": "a", "principalId": "g-1", "principalType": "Group", "principalDisplayName": nil},
		}})
	})
	env := newTestEnv(t, ft, nil)
	var pe *PermissionError
	if _, err := env.AppGroups(t.Context()); !errors.As(err, &pe) || pe.Status != http.StatusOK {
		t.Fatalf("got %v, want a PermissionError with status 200", err)
	}
}

func TestAppGroupsWithoutServicePrincipal(t *testing.T) {
	ft := newFakeTenant(t)
	env := newTestEnv(t, ft, func(c *Config) { c.ServicePrincipalID = "" })
	if env.HasServicePrincipal() {
		t.Error("HasServicePrincipal() = true")
	}
	if _, err := env.AppGroups(t.Context()); !errors.Is(err, ErrNoServicePrincipal) {
		t.Errorf("err = %v, want ErrNoServicePrincipal", err)
	}
	if len(env.tenant.TokenRequests()) != 0 {
		t.Error("a token was fetched for nothing")
	}
}

func TestAppAssignments(t *testing.T) {
	ft := newFakeTenant(t)
	col := &collection{t: t, items: appAssignments(), maxPage: 100}
	ft.Graph.Handle("GET /v1.0/servicePrincipals/"+testSP+"/appRoleAssignedTo", col)
	ft.SetAssignmentRequired(true)
	env := newTestEnv(t, ft, func(c *Config) { c.AppGroupsTTL = time.Minute })
	start := env.clock.Now()

	a, err := env.AppAssignments(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	wantUsers := []string{"u-0", "u-10", "u-100", "u-110", "u-120", "u-130", "u-140", "u-20", "u-30", "u-40", "u-50", "u-60", "u-70", "u-80", "u-90"}
	if len(a.Groups) != 150 || !slices.Equal(a.UserIDs, wantUsers) || !a.AssignmentRequired || !a.FetchedAt.Equal(start) {
		t.Fatalf("got %d groups, users %v, required %v, at %v", len(a.Groups), a.UserIDs, a.AssignmentRequired, a.FetchedAt)
	}
	reqs := ft.Requests()
	if last := reqs[len(reqs)-1]; last != "/v1.0/servicePrincipals/"+testSP+"?$select=appRoleAssignmentRequired" {
		t.Errorf("last request = %s", last)
	}
	a.UserIDs[0] = "changed by caller" // must not reach the cache

	// AppGroupsAt shares the cache: no request.
	before := len(ft.Requests())
	groups, at, err := env.AppGroupsAt(t.Context())
	if err != nil || len(groups) != 150 || !at.Equal(start) || len(ft.Requests()) != before {
		t.Fatalf("AppGroupsAt: %d groups at %v, %v; %d requests after %d", len(groups), at, err, len(ft.Requests()), before)
	}

	// Graph changes; the cache does not see it until fresh is asked for.
	ft.SetAssignmentRequired(false)
	env.clock.Advance(10 * time.Second)
	if a, _ := env.AppAssignments(t.Context(), false); !a.AssignmentRequired || a.UserIDs[0] != "u-0" {
		t.Fatalf("cached answer changed: %+v", a.UserIDs[:1])
	}
	fresh, err := env.AppAssignments(t.Context(), true)
	if err != nil || fresh.AssignmentRequired || !fresh.FetchedAt.Equal(start.Add(10*time.Second)) || col.Pages() != 4 {
		t.Fatalf("fresh: required %v at %v after %d pages, %v", fresh.AssignmentRequired, fresh.FetchedAt, col.Pages(), err)
	}
	// The fresh answer refreshed the cache for everyone.
	if a, _ := env.AppAssignments(t.Context(), false); a.AssignmentRequired || col.Pages() != 4 {
		t.Errorf("after a fresh fetch the cache says required=%v (%d pages)", a.AssignmentRequired, col.Pages())
	}
	if _, at, _ := env.AppGroupsAt(t.Context()); !at.Equal(start.Add(10 * time.Second)) {
		t.Errorf("AppGroupsAt after a fresh fetch: at %v", at)
	}
}

func TestAppAssignmentsServicePrincipalErrors(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(w http.ResponseWriter, r *http.Request)
		wantPerm bool
	}{
		{name: "403", answer: status(http.StatusForbidden, "Authorization_RequestDenied"), wantPerm: true},
		{name: "flag missing", answer: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"id": testSP})
		}},
		{name: "flag null", answer: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"appRoleAssignmentRequired": nil})
		}},
		{name: "flag in another case", answer: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"AppRoleAssignmentRequired": true})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTenant(t)
			ft.SetServicePrincipalFunc(tt.answer)
			ft.Graph.Handle("GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo", &collection{t: t, items: appAssignments(), maxPage: 999})
			env := newTestEnv(t, ft, nil)
			_, err := env.AppAssignments(t.Context(), false)
			var pe *PermissionError
			if err == nil || errors.As(err, &pe) != tt.wantPerm {
				t.Fatalf("err = %v, want an error (PermissionError: %v)", err, tt.wantPerm)
			}
			if tt.wantPerm && pe.Permission != PermApplicationReadAll {
				t.Errorf("PermissionError names %s", pe.Permission)
			}
			if _, err := env.AppGroups(t.Context()); err == nil {
				t.Error("AppGroups succeeded from a cached failure")
			}
		})
	}
}

func TestAppAssignmentsWithoutServicePrincipal(t *testing.T) {
	ft := newFakeTenant(t)
	env := newTestEnv(t, ft, func(c *Config) { c.ServicePrincipalID = "" })
	for _, fresh := range []bool{false, true} {
		if _, err := env.AppAssignments(t.Context(), fresh); !errors.Is(err, ErrNoServicePrincipal) {
			t.Errorf("fresh=%v: %v, want ErrNoServicePrincipal", fresh, err)
		}
	}
}
