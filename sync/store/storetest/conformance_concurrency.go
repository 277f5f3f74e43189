package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/teamgate/teamgate/sync/store"
)

var concurrencyTests = []namedTest{
	{"InsertTeamsOverlappingFrom20Goroutines", testConcurrentInsertTeams},
	{"UpsertSameUserFrom10Goroutines", testConcurrentUpsertSameUser},
	{"Reconciles50UsersSharing20NewTeams", testConcurrentReconciles},
}

// collect runs fn(i) for i in [0, n) concurrently and returns each result.
func collect[T any](n int, fn func(i int) (T, error)) ([]T, []error) {
	out := make([]T, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i], errs[i] = fn(i) })
	}
	wg.Wait()
	return out, errs
}

func noErrors(t *testing.T, what string, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s #%d: %v", what, i, err)
		}
	}
}

// Every id is created exactly once however the inserts interleave, and each
// transaction reports only what it created.
func testConcurrentInsertTeams(t *testing.T, s store.Store) {
	const workers, shared, per = 20, 30, 10
	all := make([]string, shared)
	for i := range shared {
		all[i] = fmt.Sprintf("g%02d", i)
	}
	created, errs := collect(workers, func(w int) ([]string, error) {
		var in []store.Team
		for k := range per {
			id := all[(w+k*3)%shared] // overlapping, in a different order per worker
			in = append(in, team(id, "Team "+id, true))
		}
		if w%2 == 1 {
			slices.Reverse(in)
		}
		var got []string
		err := s.InTx(t.Context(), func(tx store.Tx) error {
			var err error
			got, err = tx.InsertTeams(t.Context(), in, t0)
			return err
		})
		return got, err
	})
	noErrors(t, "InsertTeams", errs)
	seen := map[string]int{}
	for _, ids := range created {
		for _, id := range ids {
			seen[id]++
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("team %s reported created %d times", id, n)
		}
	}
	teams, err := s.Teams(t.Context(), store.TeamFilter{})
	if err != nil {
		t.Fatalf("Teams: %v", err)
	}
	if len(teams) != len(seen) {
		t.Errorf("%d teams stored, %d reported created", len(teams), len(seen))
	}
	for _, tm := range teams {
		if seen[tm.ID] != 1 {
			t.Errorf("team %s stored but not reported created", tm.ID)
		}
	}
}

func testConcurrentUpsertSameUser(t *testing.T, s store.Store) {
	created, errs := collect(10, func(int) (bool, error) {
		var c bool
		err := s.InTx(t.Context(), func(tx store.Tx) error {
			var err error
			_, c, err = tx.UpsertUser(t.Context(), identity("u1"), store.UserParams{UserRole: "internal_user"}, t0)
			return err
		})
		return c, err
	})
	noErrors(t, "UpsertUser", errs)
	n := 0
	for _, c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d upserts reported creating the user, want exactly 1", n)
	}
}

// Fifty sign-ins at once, each in the shape of a reconcile, all sharing
// twenty new teams: none fails, no team is duplicated, every membership is
// there.
func testConcurrentReconciles(t *testing.T, s store.Store) {
	const users, sharedTeams = 50, 20
	var shared []store.Team
	for i := range sharedTeams {
		shared = append(shared, team(fmt.Sprintf("shared-%02d", i), fmt.Sprintf("Shared %02d", i), true))
	}
	created, errs := collect(users, func(u int) ([]string, error) {
		user := fmt.Sprintf("user-%02d", u)
		own := team("own-"+user, "Own "+user, true)
		in := append(slices.Clone(shared), own)
		ids := teamIDs(in)
		var got []string
		err := s.InTx(t.Context(), func(tx store.Tx) error {
			ctx := t.Context()
			if _, _, err := tx.UpsertUser(ctx, identity(user), store.UserParams{}, t0); err != nil {
				return err
			}
			var err error
			if got, err = tx.InsertTeams(ctx, in, t0); err != nil {
				return err
			}
			if _, err := tx.SetAssigned(ctx, ids, true, t0); err != nil {
				return err
			}
			added, err := tx.AddMemberships(ctx, user, ids, "user", store.SourceEntra, t0)
			if err != nil {
				return err
			}
			if len(added) != len(ids) {
				return fmt.Errorf("added %d memberships, want %d", len(added), len(ids))
			}
			return tx.InsertSyncEvent(ctx, store.SyncEvent{UserID: user, At: t0, TeamsCreated: got, MembershipsAdded: added, Outcome: "ok"})
		})
		return got, err
	})
	noErrors(t, "reconcile", errs)
	seen := map[string]int{}
	for _, ids := range created {
		for _, id := range ids {
			seen[id]++
		}
	}
	if len(seen) != sharedTeams+users {
		t.Errorf("%d teams reported created, want %d", len(seen), sharedTeams+users)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("team %s reported created %d times", id, n)
		}
	}
	for _, tm := range shared {
		ms, err := s.TeamMembers(t.Context(), tm.ID)
		if err != nil {
			t.Fatalf("TeamMembers: %v", err)
		}
		if len(ms) != users {
			t.Errorf("team %s has %d members, want %d", tm.ID, len(ms), users)
		}
	}
	if es, err := s.SyncEvents(t.Context(), store.EventFilter{}); err != nil || len(es) != users {
		t.Errorf("%d events (%v), want %d", len(es), err, users)
	}
}
