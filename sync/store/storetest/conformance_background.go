package storetest

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// backgroundTests cover BackgroundStore and BackgroundTx: what background
// sync and session re-validation read and write.
var backgroundTests = []namedTest{
	{"SyncStateRoundTripAndOverwrite", testSyncState},
	{"TryLeaderIsExclusivePerName", testTryLeader},
	{"EndUserSessions", testEndUserSessions},
	{"EndedSessionExpiresAsUsual", testEndedSessionExpires},
	{"KnownUserIDs", testKnownUserIDs},
	{"LockUserAndSetUserValidated", testLockUser},
	{"LockUserSerializesReconciles", testLockUserSerializes},
	{"UpsertUserSetsValidatedAt", testUpsertUserValidates},
	{"CreateUserBeforeSignIn", testCreateUser},
	{"EventKindAndDetail", testEventKinds},
}

func syncState(t *testing.T, s store.Store, name string) (string, time.Time) {
	t.Helper()
	v, at, err := s.SyncState(t.Context(), name)
	if err != nil {
		t.Fatalf("SyncState(%s): %v", name, err)
	}
	return v, at
}

func testSyncState(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, _, err := s.SyncState(ctx, "groups.delta")
	wantErrIs(t, "SyncState(unset)", err, store.ErrNotFound)

	for i, step := range []struct {
		value string
		at    time.Duration
	}{
		{"https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=first", 0},
		{"https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=second", time.Minute},
		{"", 2 * time.Minute}, // an empty value is a value (e.g. "start over")
	} {
		before := s.Stats().Statements
		if err := s.SetSyncState(ctx, "groups.delta", step.value, t0.Add(step.at)); err != nil {
			t.Fatalf("SetSyncState #%d: %v", i+1, err)
		}
		if n := s.Stats().Statements - before; n != 1 {
			t.Errorf("SetSyncState #%d sent %d statements, want 1", i+1, n)
		}
		v, updated := syncState(t, s, "groups.delta")
		if v != step.value {
			t.Errorf("after SetSyncState #%d: value = %q, want %q", i+1, v, step.value)
		}
		sameTime(t, fmt.Sprintf("after SetSyncState #%d: updatedAt", i+1), updated, at(step.at))
	}

	if err := s.SetSyncState(ctx, "background.last_run", "ok", at(time.Hour)); err != nil {
		t.Fatalf("SetSyncState(other name): %v", err)
	}
	if v, _ := syncState(t, s, "groups.delta"); v != "" {
		t.Errorf("setting another name changed groups.delta to %q", v)
	}
	if v, _ := syncState(t, s, "background.last_run"); v != "ok" {
		t.Errorf("background.last_run = %q, want ok", v)
	}
	if err := s.SetSyncState(ctx, "", "x", t0); err == nil {
		t.Error("SetSyncState with an empty name: no error")
	}
}

func tryLeader(t *testing.T, s store.Store, name string) (func(), bool) {
	t.Helper()
	release, ok, err := s.TryLeader(t.Context(), name)
	if err != nil {
		t.Fatalf("TryLeader(%s): %v", name, err)
	}
	if release == nil {
		t.Fatalf("TryLeader(%s) returned a nil release", name)
	}
	t.Cleanup(release)
	return release, ok
}

func testTryLeader(t *testing.T, s store.Store) {
	release, ok := tryLeader(t, s, "background-sync")
	if !ok {
		t.Fatal("first TryLeader: ok = false on a free lock")
	}
	if _, ok := tryLeader(t, s, "background-sync"); ok {
		t.Error("second TryLeader of a held lock: ok = true")
	}
	otherRelease, ok := tryLeader(t, s, "other-job")
	if !ok {
		t.Error("TryLeader of another name: ok = false, want names independent")
	}
	release()
	release() // releasing twice is harmless
	again, ok := tryLeader(t, s, "background-sync")
	if !ok {
		t.Fatal("TryLeader after release: ok = false")
	}
	if _, ok := tryLeader(t, s, "other-job"); ok {
		t.Error("releasing one name freed another")
	}
	again()
	otherRelease()
	if _, _, err := s.TryLeader(t.Context(), ""); err == nil {
		t.Error("TryLeader with an empty name: no error")
	}
}

func testEndUserSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	seedUsers(t, s, "u1", "u2")
	newSession(t, s, "a", "u1", at(0), at(time.Hour))
	newSession(t, s, "b", "u1", at(0), at(2*time.Hour))
	newSession(t, s, "old", "u1", at(-2*time.Hour), at(-time.Hour)) // expired, not yet deleted
	newSession(t, s, "c", "u2", at(0), at(time.Hour))

	const reason = "Your account was disabled in Entra ID."
	now := at(10 * time.Minute)
	n, err := s.EndUserSessions(ctx, "u1", reason, now)
	if err != nil || n != 2 {
		t.Fatalf("EndUserSessions = %d, %v; want 2 (the live ones)", n, err)
	}
	for _, id := range []string{"a", "b"} {
		a := activeSession(t, s, id, now)
		if a.EndedReason != reason || a.UserID != "u1" {
			t.Errorf("ended session %s: ActiveSession = %+v, want EndedReason %q", id, a, reason)
		}
		_, err := s.Session(ctx, id, now)
		wantErrIs(t, "Session("+id+") after it was ended", err, store.ErrNotFound)
	}
	if a := activeSession(t, s, "c", now); a.EndedReason != "" {
		t.Errorf("another user's session was ended: %q", a.EndedReason)
	}
	if _, err := s.Session(ctx, "c", now); err != nil {
		t.Errorf("Session(c) of another user: %v", err)
	}

	// Ending again counts nothing and keeps the first reason.
	if n, err := s.EndUserSessions(ctx, "u1", "another reason", now); err != nil || n != 0 {
		t.Errorf("second EndUserSessions = %d, %v; want 0, nil", n, err)
	}
	if got := activeSession(t, s, "a", now).EndedReason; got != reason {
		t.Errorf("reason after ending again = %q, want the first %q", got, reason)
	}
	if _, err := s.EndUserSessions(ctx, "u2", "", now); err == nil {
		t.Error("EndUserSessions with an empty reason: no error")
	}
	if n, err := s.EndUserSessions(ctx, "ghost", reason, now); err != nil || n != 0 {
		t.Errorf("EndUserSessions(unknown user) = %d, %v; want 0, nil", n, err)
	}

	// A new sign-in is a new, live session.
	newSession(t, s, "d", "u1", now, at(3*time.Hour))
	if _, err := s.Session(ctx, "d", now); err != nil {
		t.Errorf("a session created after the others were ended: %v", err)
	}
	// DeleteUserSessions ("sign out everywhere") removes ended ones too.
	if n, err := s.DeleteUserSessions(ctx, "u1"); err != nil || n != 4 {
		t.Errorf("DeleteUserSessions = %d, %v; want 4", n, err)
	}
}

func testEndedSessionExpires(t *testing.T, s store.Store) {
	ctx := t.Context()
	seedUsers(t, s, "u1")
	newSession(t, s, "a", "u1", at(0), at(time.Hour))
	if _, err := s.EndUserSessions(ctx, "u1", "removed from the app", at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, err := s.ActiveSession(ctx, "a", at(time.Hour))
	wantErrIs(t, "ActiveSession of an ended session at its expiry", err, store.ErrNotFound)
	if n, err := s.DeleteExpiredSessions(ctx, at(time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want the ended session deleted", n, err)
	}
}

func testKnownUserIDs(t *testing.T, s store.Store) {
	ctx := t.Context()
	seedUsers(t, s, "u1", "u2", "u3")
	got, err := s.KnownUserIDs(ctx, []string{"u3", "ghost", "u1", "u1"})
	if err != nil {
		t.Fatalf("KnownUserIDs: %v", err)
	}
	equalIDs(t, "KnownUserIDs", got, []string{"u1", "u3"})

	before := s.Stats().Statements
	if got, err := s.KnownUserIDs(ctx, nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("KnownUserIDs(nil) = %#v, %v; want an empty, non-nil list", got, err)
	}
	if n := s.Stats().Statements - before; n != 0 {
		t.Errorf("KnownUserIDs(nil) sent %d statements, want 0", n)
	}
	for _, size := range []int{1, 500} {
		ids := make([]string, size)
		for i := range ids {
			ids[i] = fmt.Sprintf("x%04d", i)
		}
		ids[size-1] = "u2"
		before := s.Stats().Statements
		got, err := s.KnownUserIDs(ctx, ids)
		if err != nil {
			t.Fatalf("KnownUserIDs(%d ids): %v", size, err)
		}
		equalIDs(t, fmt.Sprintf("KnownUserIDs(%d ids)", size), got, []string{"u2"})
		if n := s.Stats().Statements - before; n != 1 {
			t.Errorf("KnownUserIDs(%d ids) sent %d statements, want 1", size, n)
		}
	}
}

func lockUser(t *testing.T, s store.Store, id string) store.User {
	t.Helper()
	var u store.User
	inTx(t, s, func(tx store.Tx) error {
		var err error
		u, err = tx.LockUser(t.Context(), id)
		return err
	})
	return u
}

func testLockUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := store.UserParams{UserRole: "internal_user", MaxBudget: ptr(5.0), Models: []string{"gpt-4o"}}
	want, _ := upsert(t, s, identity("u1"), p, t0)
	equalUser(t, lockUser(t, s, "u1"), want)

	err := s.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.LockUser(ctx, "ghost")
		return err
	})
	wantErrIs(t, "LockUser(unknown)", err, store.ErrNotFound)

	for _, step := range []struct {
		name        string
		set, wantAt time.Duration
	}{
		{"forward", time.Hour, time.Hour},
		{"backward is ignored (a late writer)", 30 * time.Minute, time.Hour},
		{"forward again", 2 * time.Hour, 2 * time.Hour},
	} {
		before := s.Stats().Statements
		inTx(t, s, func(tx store.Tx) error {
			if _, err := tx.LockUser(ctx, "u1"); err != nil {
				return err
			}
			return tx.SetUserValidated(ctx, "u1", at(step.set))
		})
		// BEGIN, LockUser, SetUserValidated, COMMIT.
		if n := s.Stats().Statements - before; n != 4 {
			t.Errorf("%s: %d statements, want 4", step.name, n)
		}
		want.ValidatedAt = ptr(at(step.wantAt))
		equalUser(t, lockUser(t, s, "u1"), want)
	}
	u, err := s.User(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	equalUser(t, u, want) // LastLoginAt untouched by re-validation

	err = s.InTx(ctx, func(tx store.Tx) error { return tx.SetUserValidated(ctx, "ghost", t0) })
	wantErrIs(t, "SetUserValidated(unknown)", err, store.ErrNotFound)
}

// Each transaction reads a number from the locked user and writes it back
// plus one: without the row lock, concurrent transactions would read the
// same number and lose increments.
func testLockUserSerializes(t *testing.T, s store.Store) {
	ctx := t.Context()
	upsert(t, s, store.UserIdentity{ID: "u1", DisplayName: "0"}, store.UserParams{}, t0)
	const workers = 8
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			err := s.InTx(ctx, func(tx store.Tx) error {
				u, err := tx.LockUser(ctx, "u1")
				if err != nil {
					return err
				}
				n, err := strconv.Atoi(u.DisplayName)
				if err != nil {
					return err
				}
				_, _, err = tx.UpsertUser(ctx, store.UserIdentity{ID: "u1", DisplayName: strconv.Itoa(n + 1)}, store.UserParams{}, t0)
				return err
			})
			if err != nil {
				t.Errorf("InTx: %v", err)
			}
		})
	}
	wg.Wait()
	u, err := s.User(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if u.DisplayName != strconv.Itoa(workers) {
		t.Errorf("after %d locked increments the count is %s: updates were lost", workers, u.DisplayName)
	}
}

func testUpsertUserValidates(t *testing.T, s store.Store) {
	ctx := t.Context()
	upsert(t, s, identity("u1"), store.UserParams{}, t0)
	inTx(t, s, func(tx store.Tx) error { return tx.SetUserValidated(ctx, "u1", at(time.Hour)) })
	u, _ := upsert(t, s, identity("u1"), store.UserParams{}, at(2*time.Hour))
	sameTimePtr(t, "ValidatedAt returned by UpsertUser at sign-in", u.ValidatedAt, ptr(at(2*time.Hour)))
	got, err := s.User(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	sameTimePtr(t, "ValidatedAt after sign-in", got.ValidatedAt, ptr(at(2*time.Hour)))
	users, err := s.Users(ctx, 0, 0)
	if err != nil || len(users) != 1 {
		t.Fatalf("Users = %v, %v", users, err)
	}
	sameTimePtr(t, "ValidatedAt from Users", users[0].ValidatedAt, ptr(at(2*time.Hour)))
	byLogin, err := s.UserByLogin(ctx, "u1@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sameTimePtr(t, "ValidatedAt from UserByLogin", byLogin.ValidatedAt, ptr(at(2*time.Hour)))
}

func testEventKinds(t *testing.T, s store.Store) {
	ctx := t.Context()
	seedUsers(t, s, "u1")
	const detail = "delta token expired: full sync"
	inTx(t, s, func(tx store.Tx) error {
		return tx.InsertSyncEvent(ctx, store.SyncEvent{UserID: "u1", At: at(1 * time.Second), Outcome: store.OutcomeOK, Kind: store.EventRevalidate})
	})
	for _, e := range []store.SyncEvent{
		{UserID: "u1", At: at(0), Outcome: store.OutcomeOK}, // empty kind: a sign-in
		{UserID: "", At: at(2 * time.Second), Outcome: store.OutcomeOK, Kind: store.EventBackground, Detail: detail},
		{UserID: "u2", At: at(3 * time.Second), Outcome: store.OutcomeError, Kind: store.EventRevalidate, Error: "graph: unavailable"},
	} {
		if err := s.RecordSyncEvent(ctx, e); err != nil {
			t.Fatalf("RecordSyncEvent: %v", err)
		}
	}
	all := events(t, s, store.EventFilter{})
	var got []string
	for _, e := range all {
		got = append(got, e.UserID+"/"+e.Kind)
	}
	equalIDs(t, "events user/kind, newest first", got, []string{"u2/revalidate", "/background", "u1/revalidate", "u1/signin"})
	if all[1].Detail != detail || all[0].Detail != "" {
		t.Errorf("details = %q, %q; want %q, empty", all[1].Detail, all[0].Detail, detail)
	}

	for _, tc := range []struct {
		name string
		f    store.EventFilter
		want []string
	}{
		{"one kind", store.EventFilter{Kind: store.EventRevalidate}, []string{"u2/revalidate", "u1/revalidate"}},
		{"sign-ins", store.EventFilter{Kind: store.EventSignIn}, []string{"u1/signin"}},
		{"one kind, limited", store.EventFilter{Kind: store.EventRevalidate, Limit: 1}, []string{"u2/revalidate"}},
		{"user and kind", store.EventFilter{UserID: "u1", Kind: store.EventRevalidate}, []string{"u1/revalidate"}},
		{"user, every kind", store.EventFilter{UserID: "u1"}, []string{"u1/revalidate", "u1/signin"}},
		{"unknown kind", store.EventFilter{Kind: "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range events(t, s, tc.f) {
				got = append(got, e.UserID+"/"+e.Kind)
			}
			equalIDs(t, "events", got, tc.want)
		})
	}

	// The pages' sync log returns and filters kinds too.
	logged, err := s.FindSyncEvents(ctx, store.EventQuery{Kind: store.EventBackground})
	if err != nil {
		t.Fatalf("FindSyncEvents: %v", err)
	}
	if len(logged) != 1 || logged[0].Kind != store.EventBackground || logged[0].Detail != detail {
		t.Errorf("FindSyncEvents(background) = %+v, want the background run with its detail", logged)
	}
	if n, err := s.CountSyncEvents(ctx, store.EventQuery{Kind: store.EventRevalidate}); err != nil || n != 2 {
		t.Errorf("CountSyncEvents(revalidate) = %d, %v; want 2", n, err)
	}
}

func testCreateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := store.UserParams{UserRole: "internal_user", MaxBudget: ptr(5.0), BudgetDuration: "7d", Models: []string{"gpt-4o"}}
	create := func(id store.UserIdentity, params store.UserParams) bool {
		t.Helper()
		var created bool
		before := s.Stats().Statements
		inTx(t, s, func(tx store.Tx) error {
			var err error
			created, err = tx.CreateUser(ctx, id, params, at(time.Hour))
			return err
		})
		if n := s.Stats().Statements - before; n != 3 { // BEGIN, CreateUser, COMMIT
			t.Errorf("CreateUser: %d statements, want 3", n)
		}
		return created
	}
	if !create(identity("u1"), p) {
		t.Fatal("CreateUser of a new user: created = false")
	}
	u, err := s.User(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if u.LastLoginAt != nil || u.ValidatedAt == nil || !u.ValidatedAt.Equal(at(time.Hour)) ||
		u.UserRole != "internal_user" || u.BudgetDuration != "7d" || u.Email != identity("u1").Email {
		t.Errorf("created user = %+v, want params, no last login, validated now", u)
	}
	// An existing user (here one who signed in) is left as is.
	signedIn, _ := upsert(t, s, identity("u2"), p, t0)
	if create(store.UserIdentity{ID: "u2", Email: "other@example.com"}, store.UserParams{UserRole: "proxy_admin"}) {
		t.Error("CreateUser of an existing user: created = true")
	}
	u2, err := s.User(ctx, "u2")
	if err != nil {
		t.Fatal(err)
	}
	equalUser(t, u2, signedIn)
	// A sign-in later counts as the first login and keeps the params.
	after, created := upsert(t, s, identity("u1"), store.UserParams{UserRole: "proxy_admin"}, at(2*time.Hour))
	if created || after.LastLoginAt == nil || after.UserRole != "internal_user" {
		t.Errorf("sign-in after creation = %+v (created %v)", after, created)
	}
}
