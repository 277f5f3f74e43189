package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// RunConformance runs the suite every Store implementation must pass.
// newStore must return a fresh, migrated store that no other test uses; it
// is called once per subtest.
func RunConformance(t *testing.T, newStore func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		tests []namedTest
	}{
		{"Users", userTests},
		{"Teams", teamTests},
		{"Memberships", membershipTests},
		{"SyncEvents", eventTests},
		{"Sessions", sessionTests},
		{"Transactions", txTests},
		{"Batches", batchTests},
		{"Concurrency", concurrencyTests},
		{"SigningKeys", keyTests},
		{"SigningReplicas", signingReplicaTests},
		{"Outbox", outboxTests},
		{"OutboxConcurrency", outboxConcurrencyTests},
		{"Pages", pagesTests},
		{"SessionLifecycle", sessionLifecycleTests},
		{"Background", backgroundTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
			}
		})
	}
}

type namedTest struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// t0 has nanoseconds on purpose: stores keep microseconds, so every
// comparison goes through at().
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// at is t0 plus d, at the precision stores keep.
func at(d time.Duration) time.Time { return t0.Add(d).Truncate(time.Microsecond) }

var errBoom = errors.New("boom")

func ptr[T any](v T) *T { return &v }

func inTx(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.InTx(t.Context(), fn); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

func identity(id string) store.UserIdentity {
	return store.UserIdentity{ID: id, Email: id + "@example.com", UPN: id + "@example.onmicrosoft.com", DisplayName: "User " + id}
}

// seedUsers creates users with default params at t0.
func seedUsers(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	inTx(t, s, func(tx store.Tx) error {
		for _, id := range ids {
			if _, _, err := tx.UpsertUser(t.Context(), identity(id), store.UserParams{UserRole: "internal_user"}, at(0)); err != nil {
				return err
			}
		}
		return nil
	})
}

func team(id, alias string, assigned bool) store.Team {
	return store.Team{ID: id, Alias: alias, Assigned: assigned}
}

// seedTeams inserts assigned teams aliased "Team <id>" at t0.
func seedTeams(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	var in []store.Team
	for _, id := range ids {
		in = append(in, team(id, "Team "+id, true))
	}
	inTx(t, s, func(tx store.Tx) error {
		_, err := tx.InsertTeams(t.Context(), in, at(0))
		return err
	})
}

func seedMemberships(t *testing.T, s store.Store, userID, source string, teamIDs ...string) {
	t.Helper()
	inTx(t, s, func(tx store.Tx) error {
		_, err := tx.AddMemberships(t.Context(), userID, teamIDs, "user", source, at(0))
		return err
	})
}

// equalIDs fails unless got and want hold the same ids in the same order
// (nil and empty are equal).
func equalIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func teamIDs(ts []store.Team) []string {
	out := make([]string, len(ts))
	for i, tm := range ts {
		out[i] = tm.ID
	}
	return out
}

func membershipKeys(ms []store.Membership) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.TeamID + "/" + m.UserID + "/" + m.Source
	}
	return out
}

// sameTime compares instants; stores return UTC.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %s, want UTC", what, got.Location())
	}
}

// sameTimePtr compares optional instants (nil: never).
func sameTimePtr(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case (got == nil) != (want == nil):
		t.Errorf("%s = %v, want %v", what, got, want)
	case got != nil:
		sameTime(t, what, *got, *want)
	}
}

// equalTeam compares every field (times as instants).
func equalTeam(t *testing.T, got, want store.Team) {
	t.Helper()
	sameTime(t, "team "+want.ID+" CreatedAt", got.CreatedAt, want.CreatedAt)
	sameTime(t, "team "+want.ID+" UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("team = %s, want %s", dump(got), dump(want))
	}
}

func equalUser(t *testing.T, got, want store.User) {
	t.Helper()
	sameTime(t, "user "+want.ID+" CreatedAt", got.CreatedAt, want.CreatedAt)
	sameTimePtr(t, "user "+want.ID+" LastLoginAt", got.LastLoginAt, want.LastLoginAt)
	sameTimePtr(t, "user "+want.ID+" ValidatedAt", got.ValidatedAt, want.ValidatedAt)
	got.CreatedAt, want.CreatedAt, got.LastLoginAt, want.LastLoginAt = time.Time{}, time.Time{}, nil, nil
	got.ValidatedAt, want.ValidatedAt = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("user = %s, want %s", dump(got), dump(want))
	}
}

// dump prints pointers' values, which %+v does not.
func dump(v any) string {
	rv := reflect.ValueOf(v)
	out := rv.Type().Name() + "{"
	for i := range rv.NumField() {
		f := rv.Field(i)
		if i > 0 {
			out += " "
		}
		out += rv.Type().Field(i).Name + ":"
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			out += fmt.Sprintf("&%v", f.Elem().Interface())
		} else {
			out += fmt.Sprintf("%#v", f.Interface())
		}
	}
	return out + "}"
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", what, err, target)
	}
}
