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
