package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

var userTests = []namedTest{
	{"UpsertUserCreatesWithParams", testUpsertUserCreates},
	{"UpsertUserRefreshesIdentityKeepsParams", testUpsertUserRefreshes},
	{"UpsertUserCreatedIsFalseAtSameInstant", testUpsertUserSameInstant},
	{"UpsertUserTwiceInOneTx", testUpsertUserTwiceInTx},
	{"UpsertUserEmptyModelsReadBackAsEmptyList", testUpsertUserEmptyModels},
	{"UpsertUserRejectsEmptyID", testUpsertUserEmptyID},
	{"UserNotFound", testUserNotFound},
	{"UsersOrderAndPaging", testUsersPaging},
}

func upsert(t *testing.T, s store.Store, id store.UserIdentity, p store.UserParams, now time.Time) (store.User, bool) {
	t.Helper()
	var u store.User
	var created bool
	inTx(t, s, func(tx store.Tx) error {
		var err error
		u, created, err = tx.UpsertUser(t.Context(), id, p, now)
		return err
	})
	return u, created
}

func testUpsertUserCreates(t *testing.T, s store.Store) {
	id := identity("u1")
	p := store.UserParams{UserRole: "internal_user", MaxBudget: ptr(10.5), BudgetDuration: "30d", Models: []string{"gpt-4o", "o3"}}
	u, created := upsert(t, s, id, p, t0)
	if !created {
		t.Errorf("created = false for a new user")
	}
	want := store.User{
		ID: "u1", Email: id.Email, UPN: id.UPN, DisplayName: id.DisplayName,
		UserRole: "internal_user", MaxBudget: ptr(10.5), BudgetDuration: "30d", Models: []string{"gpt-4o", "o3"},
		CreatedAt: at(0), LastLoginAt: ptr(at(0)), ValidatedAt: ptr(at(0)),
	}
	equalUser(t, u, want)
	got, err := s.User(t.Context(), "u1")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	equalUser(t, got, want)
}

func testUpsertUserRefreshes(t *testing.T, s store.Store) {
	p := store.UserParams{UserRole: "internal_user", MaxBudget: ptr(10.0), BudgetDuration: "30d", Models: []string{"gpt-4o"}}
	upsert(t, s, identity("u1"), p, t0)

	newID := store.UserIdentity{ID: "u1", Email: "new@example.com", UPN: "new@example.onmicrosoft.com", DisplayName: "New Name"}
	other := store.UserParams{UserRole: "proxy_admin", MaxBudget: ptr(99.0), BudgetDuration: "1d", Models: []string{"x"}}
	u, created := upsert(t, s, newID, other, t0.Add(time.Hour))
	if created {
		t.Errorf("created = true for an existing user")
	}
	want := store.User{
		ID: "u1", Email: "new@example.com", UPN: "new@example.onmicrosoft.com", DisplayName: "New Name",
		UserRole: "internal_user", MaxBudget: ptr(10.0), BudgetDuration: "30d", Models: []string{"gpt-4o"},
		CreatedAt: at(0), LastLoginAt: ptr(at(time.Hour)), ValidatedAt: ptr(at(time.Hour)),
	}
	equalUser(t, u, want)
	got, err := s.User(t.Context(), "u1")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	equalUser(t, got, want)
}

// A store that told "created" from created_at == now would get this wrong
// under a fixed test clock.
func testUpsertUserSameInstant(t *testing.T, s store.Store) {
	if _, created := upsert(t, s, identity("u1"), store.UserParams{}, t0); !created {
		t.Errorf("first upsert: created = false")
	}
	if _, created := upsert(t, s, identity("u1"), store.UserParams{}, t0); created {
		t.Errorf("second upsert at the same instant: created = true")
	}
}

func testUpsertUserTwiceInTx(t *testing.T, s store.Store) {
	var first, second bool
	inTx(t, s, func(tx store.Tx) error {
		var err error
		if _, first, err = tx.UpsertUser(t.Context(), identity("u1"), store.UserParams{}, t0); err != nil {
			return err
		}
		_, second, err = tx.UpsertUser(t.Context(), identity("u1"), store.UserParams{}, t0.Add(time.Second))
		return err
	})
	if !first || second {
		t.Errorf("created = %v then %v, want true then false", first, second)
	}
}

func testUpsertUserEmptyModels(t *testing.T, s store.Store) {
	u, _ := upsert(t, s, identity("u1"), store.UserParams{Models: nil}, t0)
	if u.Models == nil || len(u.Models) != 0 {
		t.Errorf("Models from UpsertUser = %#v, want empty non-nil", u.Models)
	}
	got, err := s.User(t.Context(), "u1")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	b, _ := json.Marshal(got.Models)
	if string(b) != "[]" {
		t.Errorf("Models encodes as %s, want []", b)
	}
	if got.MaxBudget != nil {
		t.Errorf("MaxBudget = %v, want nil", *got.MaxBudget)
	}
}

func testUpsertUserEmptyID(t *testing.T, s store.Store) {
	err := s.InTx(t.Context(), func(tx store.Tx) error {
		_, _, err := tx.UpsertUser(t.Context(), store.UserIdentity{}, store.UserParams{}, t0)
		return err
	})
	if err == nil {
		t.Errorf("UpsertUser with empty id: no error")
	}
}

func testUserNotFound(t *testing.T, s store.Store) {
	_, err := s.User(t.Context(), "nobody")
	wantErrIs(t, "User(nobody)", err, store.ErrNotFound)
}

func testUsersPaging(t *testing.T, s store.Store) {
	inTx(t, s, func(tx store.Tx) error {
		for _, u := range []store.UserIdentity{
			{ID: "id-c", Email: "carol@example.com"},
			{ID: "id-a", Email: "alice@example.com"},
			{ID: "id-b2", Email: "bob@example.com"},
			{ID: "id-b1", Email: "bob@example.com"},
		} {
			if _, _, err := tx.UpsertUser(t.Context(), u, store.UserParams{}, t0); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		name          string
		limit, offset int
		want          []string
	}{
		{"all", 0, 0, []string{"id-a", "id-b1", "id-b2", "id-c"}},
		{"first page", 2, 0, []string{"id-a", "id-b1"}},
		{"second page", 2, 2, []string{"id-b2", "id-c"}},
		{"offset without limit", 0, 3, []string{"id-c"}},
		{"past the end", 2, 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			users, err := s.Users(t.Context(), tc.limit, tc.offset)
			if err != nil {
				t.Fatalf("Users: %v", err)
			}
			var ids []string
			for _, u := range users {
				ids = append(ids, u.ID)
			}
			equalIDs(t, "Users ids", ids, tc.want)
		})
	}
}
