package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

var eventTests = []namedTest{
	{"InsertSyncEventRoundTrip", testEventRoundTrip},
	{"RecordSyncEventWithoutUser", testRecordSyncEventWithoutUser},
	{"SyncEventsNewestFirstAndFiltered", testSyncEventsOrder},
	{"SyncEventsDefaultLimit", testSyncEventsDefaultLimit},
}

var sessionTests = []namedTest{
	{"SessionRoundTrip", testSessionRoundTrip},
	{"SessionExpired", testSessionExpired},
	{"CreateSessionConflictAndUnknownUser", testCreateSessionErrors},
	{"DeleteSession", testDeleteSession},
	{"DeleteExpiredSessions", testDeleteExpiredSessions},
}

func events(t *testing.T, s store.Store, f store.EventFilter) []store.SyncEvent {
	t.Helper()
	es, err := s.SyncEvents(t.Context(), f)
	if err != nil {
		t.Fatalf("SyncEvents: %v", err)
	}
	return es
}

func testEventRoundTrip(t *testing.T, s store.Store) {
	full := store.SyncEvent{
		UserID: "u1", At: t0, TeamsCreated: []string{"a", "b"}, TeamsRenamed: []string{"c"},
		TeamsUnassigned: []string{"d"}, MembershipsAdded: []string{"a"}, MembershipsRemoved: []string{"e", "f"},
		Duration: 1234567 * time.Nanosecond, Outcome: "ok",
	}
	bare := store.SyncEvent{UserID: "u1", At: t0.Add(time.Second), Outcome: "error", Error: "graph: unavailable"}
	inTx(t, s, func(tx store.Tx) error { return tx.InsertSyncEvent(t.Context(), full) })
	inTx(t, s, func(tx store.Tx) error { return tx.InsertSyncEvent(t.Context(), bare) })

	got := events(t, s, store.EventFilter{})
	if len(got) != 2 {
		t.Fatalf("got %d events, want 2", len(got))
	}
	full.Kind, bare.Kind = store.EventSignIn, store.EventSignIn // stored for an empty Kind
	empty := []string{}
	bare.TeamsCreated, bare.TeamsRenamed, bare.TeamsUnassigned, bare.MembershipsAdded, bare.MembershipsRemoved = empty, empty, empty, empty, empty
	for i, want := range []store.SyncEvent{bare, full} {
		g := got[i]
		if g.ID == 0 {
			t.Errorf("event %d has no id", i)
		}
		sameTime(t, fmt.Sprintf("event %d At", i), g.At, want.At.Truncate(time.Microsecond))
		g.ID, g.At, want.At = 0, time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, want) {
			t.Errorf("event %d = %+v, want %+v", i, g, want)
		}
	}
	if got[0].ID <= got[1].ID {
		t.Errorf("ids %d, %d: the later insert should have the larger id", got[0].ID, got[1].ID)
	}
}

func testRecordSyncEventWithoutUser(t *testing.T, s store.Store) {
	e := store.SyncEvent{UserID: "never-synced", At: t0, Outcome: "error", Error: "permission missing"}
	if err := s.RecordSyncEvent(t.Context(), e); err != nil {
		t.Fatalf("RecordSyncEvent: %v", err)
	}
	got := events(t, s, store.EventFilter{UserID: "never-synced"})
	if len(got) != 1 || got[0].Error != "permission missing" {
		t.Errorf("events = %+v, want the recorded one", got)
	}
}

func testSyncEventsOrder(t *testing.T, s store.Store) {
	for _, e := range []struct {
		user string
		at   time.Duration
		tag  string
	}{
		{"u1", 0, "u1@0"}, {"u2", 1 * time.Minute, "u2@1"}, {"u1", 2 * time.Minute, "u1@2"},
		{"u1", 1 * time.Minute, "u1@1"}, {"u1", 2 * time.Minute, "u1@2b"},
	} {
		if err := s.RecordSyncEvent(t.Context(), store.SyncEvent{UserID: e.user, At: t0.Add(e.at), Outcome: "ok", Error: e.tag}); err != nil {
			t.Fatalf("RecordSyncEvent: %v", err)
		}
	}
	tests := []struct {
		name string
		f    store.EventFilter
		want []string
	}{
		{"everyone, newest first, ties newest insert first", store.EventFilter{}, []string{"u1@2b", "u1@2", "u1@1", "u2@1", "u1@0"}},
		{"one user", store.EventFilter{UserID: "u1"}, []string{"u1@2b", "u1@2", "u1@1", "u1@0"}},
		{"one user, limited", store.EventFilter{UserID: "u1", Limit: 2}, []string{"u1@2b", "u1@2"}},
		{"everyone, limited", store.EventFilter{Limit: 3}, []string{"u1@2b", "u1@2", "u1@1"}},
		{"unknown user", store.EventFilter{UserID: "ghost"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tags []string
			for _, e := range events(t, s, tc.f) {
				tags = append(tags, e.Error)
			}
			equalIDs(t, "events", tags, tc.want)
		})
	}
}

func testSyncEventsDefaultLimit(t *testing.T, s store.Store) {
	inTx(t, s, func(tx store.Tx) error {
		for i := range 101 {
			if err := tx.InsertSyncEvent(t.Context(), store.SyncEvent{UserID: "u1", At: t0.Add(time.Duration(i) * time.Second), Outcome: "ok"}); err != nil {
				return err
			}
		}
		return nil
	})
	got := events(t, s, store.EventFilter{})
	if len(got) != 100 {
		t.Fatalf("got %d events, want the default limit of 100", len(got))
	}
	sameTime(t, "newest", got[0].At, at(100*time.Second))
}

func createSession(t *testing.T, s store.Store, id, user string, expires time.Time) {
	t.Helper()
	if err := s.CreateSession(t.Context(), store.Session{ID: id, UserID: user, CreatedAt: t0, ExpiresAt: expires}); err != nil {
		t.Fatalf("CreateSession(%s): %v", id, err)
	}
}

func testSessionRoundTrip(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	createSession(t, s, "s1", "u1", t0.Add(time.Hour))
	got, err := s.Session(t.Context(), "s1", t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if got.ID != "s1" || got.UserID != "u1" {
		t.Errorf("session = %+v", got)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, at(0))
	sameTime(t, "ExpiresAt", got.ExpiresAt, at(time.Hour))
	_, err = s.Session(t.Context(), "unknown", t0)
	wantErrIs(t, "Session(unknown)", err, store.ErrNotFound)
}

func testSessionExpired(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	createSession(t, s, "s1", "u1", t0.Add(time.Hour))
	tests := []struct {
		name  string
		now   time.Time
		found bool
	}{
		{"a microsecond before expiry", at(time.Hour - time.Microsecond), true},
		{"at expiry", at(time.Hour), false},
		{"after expiry", t0.Add(2 * time.Hour), false},
		{"in another time zone, before expiry", t0.Add(30 * time.Minute).In(time.FixedZone("UTC+5", 5*3600)), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Session(t.Context(), "s1", tc.now)
			if tc.found && err != nil {
				t.Errorf("Session: %v, want found", err)
			}
			if !tc.found {
				wantErrIs(t, "Session", err, store.ErrNotFound)
			}
		})
	}
}

func testCreateSessionErrors(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	createSession(t, s, "s1", "u1", t0.Add(time.Hour))
	err := s.CreateSession(t.Context(), store.Session{ID: "s1", UserID: "u1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	wantErrIs(t, "duplicate session id", err, store.ErrConflict)
	err = s.CreateSession(t.Context(), store.Session{ID: "s2", UserID: "ghost", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	wantErrIs(t, "session of an unknown user", err, store.ErrNotFound)
}

func testDeleteSession(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	createSession(t, s, "s1", "u1", t0.Add(time.Hour))
	for i := range 2 { // deleting twice is fine
		if err := s.DeleteSession(t.Context(), "s1"); err != nil {
			t.Fatalf("DeleteSession #%d: %v", i+1, err)
		}
	}
	_, err := s.Session(t.Context(), "s1", t0)
	wantErrIs(t, "Session after delete", err, store.ErrNotFound)
}

func testDeleteExpiredSessions(t *testing.T, s store.Store) {
	seedUsers(t, s, "u1")
	createSession(t, s, "old", "u1", t0.Add(-time.Hour))
	createSession(t, s, "edge", "u1", t0)
	createSession(t, s, "live", "u1", t0.Add(time.Hour))
	n, err := s.DeleteExpiredSessions(t.Context(), t0)
	if err != nil {
		t.Fatalf("DeleteExpiredSessions: %v", err)
	}
	if n != 2 {
		t.Errorf("deleted %d, want 2 (old and edge)", n)
	}
	if _, err := s.Session(t.Context(), "live", t0); err != nil {
		t.Errorf("live session: %v", err)
	}
	if n, err := s.DeleteExpiredSessions(t.Context(), t0); err != nil || n != 0 {
		t.Errorf("second DeleteExpiredSessions = %d, %v; want 0, nil", n, err)
	}
}
