package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

var sessionLifecycleTests = []namedTest{
	{"ActiveSessionStartsAtCreation", testActiveSessionStartsAtCreation},
	{"TouchOnlyMovesForward", testTouchOnlyMovesForward},
	{"TouchUnknownSessionIsNoOp", testTouchUnknownSession},
	{"ActiveSessionExpired", testActiveSessionExpired},
	{"DeleteUserSessions", testDeleteUserSessions},
	{"ConcurrentTouchesKeepTheLatest", testConcurrentTouches},
	{"CountActiveSessions", testCountActiveSessions},
}

func newSession(t *testing.T, s store.Store, id, user string, created, expires time.Time) {
	t.Helper()
	if err := s.CreateSession(t.Context(), store.Session{ID: id, UserID: user, CreatedAt: created, ExpiresAt: expires}); err != nil {
		t.Fatalf("CreateSession %s: %v", id, err)
	}
}

func activeSession(t *testing.T, s store.Store, id string, now time.Time) store.SessionActivity {
	t.Helper()
	a, err := s.ActiveSession(t.Context(), id, now)
	if err != nil {
		t.Fatalf("ActiveSession %s: %v", id, err)
	}
	return a
}

func testActiveSessionStartsAtCreation(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	newSession(t, s, "s1", "u1", at(0), at(time.Hour))
	a := activeSession(t, s, "s1", at(time.Minute))
	if a.ID != "s1" || a.UserID != "u1" || !a.CreatedAt.Equal(at(0)) || !a.ExpiresAt.Equal(at(time.Hour)) {
		t.Errorf("session = %+v", a.Session)
	}
	if !a.LastSeenAt.Equal(at(0)) {
		t.Errorf("LastSeenAt = %v before any touch, want the creation time %v", a.LastSeenAt, at(0))
	}
}

func testTouchOnlyMovesForward(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	newSession(t, s, "s1", "u1", at(0), at(time.Hour))
	for _, step := range []struct {
		touch, want time.Duration
	}{
		{10 * time.Minute, 10 * time.Minute},
		{5 * time.Minute, 10 * time.Minute}, // a late writer (another replica) cannot move it back
		{20 * time.Minute, 20 * time.Minute},
	} {
		if err := s.TouchSession(t.Context(), "s1", at(step.touch)); err != nil {
			t.Fatalf("TouchSession: %v", err)
		}
		if got := activeSession(t, s, "s1", at(step.touch)).LastSeenAt; !got.Equal(at(step.want)) {
			t.Errorf("after touching at +%v: LastSeenAt = +%v, want +%v", step.touch, got.Sub(t0), step.want)
		}
	}
}

func testTouchUnknownSession(t *testing.T, s store.Store) {
	if err := s.TouchSession(t.Context(), "nope", at(0)); err != nil {
		t.Errorf("TouchSession of an unknown session: %v, want nil", err)
	}
}

func testActiveSessionExpired(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	newSession(t, s, "s1", "u1", at(0), at(time.Hour))
	for name, id := range map[string]string{"expired": "s1", "unknown": "s2"} {
		if _, err := s.ActiveSession(t.Context(), id, at(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
}

func testDeleteUserSessions(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1", "u2")
	newSession(t, s, "a", "u1", at(0), at(time.Hour))
	newSession(t, s, "b", "u1", at(0), at(time.Hour))
	newSession(t, s, "c", "u2", at(0), at(time.Hour))
	n, err := s.DeleteUserSessions(t.Context(), "u1")
	if err != nil || n != 2 {
		t.Fatalf("DeleteUserSessions = %d, %v; want 2", n, err)
	}
	for id, want := range map[string]bool{"a": false, "b": false, "c": true} {
		_, err := s.Session(t.Context(), id, at(time.Minute))
		if got := err == nil; got != want {
			t.Errorf("session %s exists = %v, want %v (err %v)", id, got, want, err)
		}
	}
	if n, err := s.DeleteUserSessions(t.Context(), "u1"); err != nil || n != 0 {
		t.Errorf("second DeleteUserSessions = %d, %v; want 0, nil", n, err)
	}
}

func testConcurrentTouches(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	newSession(t, s, "s1", "u1", at(0), at(time.Hour))
	var wg sync.WaitGroup
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.TouchSession(t.Context(), "s1", at(time.Duration(i)*time.Second)); err != nil {
				t.Errorf("TouchSession: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := activeSession(t, s, "s1", at(time.Minute)).LastSeenAt; !got.Equal(at(20 * time.Second)) {
		t.Errorf("LastSeenAt = +%v after concurrent touches, want +20s", got.Sub(t0))
	}
}

// CountActiveSessions counts live sessions only: not the expired, not the
// ended, not the deleted.
func testCountActiveSessions(t *testing.T, s store.Store) {
	count := func(now time.Time) int64 {
		t.Helper()
		n, err := s.CountActiveSessions(t.Context(), now)
		if err != nil {
			t.Fatalf("CountActiveSessions: %v", err)
		}
		return n
	}
	if n := count(at(0)); n != 0 {
		t.Fatalf("empty store: %d active sessions, want 0", n)
	}
	seedUsers(t, s, "u1", "u2", "u3")
	newSession(t, s, "a", "u1", at(0), at(time.Hour))
	newSession(t, s, "b", "u1", at(0), at(2*time.Hour))
	newSession(t, s, "c", "u2", at(0), at(2*time.Hour))
	newSession(t, s, "d", "u3", at(0), at(2*time.Hour))
	if n := count(at(time.Minute)); n != 4 {
		t.Errorf("4 live sessions: counted %d", n)
	}
	if n := count(at(time.Hour)); n != 3 { // a expires at +1h exactly
		t.Errorf("at a's expiry: counted %d, want 3", n)
	}
	if _, err := s.EndUserSessions(t.Context(), "u2", "account_disabled", at(time.Minute)); err != nil {
		t.Fatalf("EndUserSessions: %v", err)
	}
	if err := s.DeleteSession(t.Context(), "d"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if n := count(at(time.Minute)); n != 2 {
		t.Errorf("after ending c and deleting d: counted %d, want 2 (a, b)", n)
	}
	if n := count(at(2 * time.Hour)); n != 0 {
		t.Errorf("after every expiry: counted %d, want 0", n)
	}
}
