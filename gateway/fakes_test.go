package gateway

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"
)

// The fakes behind the gateway's ports: a settable clock, an in-memory
// session store, a syncer that "writes" teams into it, a directory for the
// admin API and a database that cannot be reached. Mocks are structs with
// knobs, not generated code.

// testClock is a settable clock shared by the gateway and the fake tenant.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now().Truncate(time.Second)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// memStore is an in-memory SessionStore.
type memStore struct {
	mu         sync.Mutex
	sessions   map[string]SessionRecord
	principals map[string]Principal
	lookups    int
	lookupErr  error
	deleteErr  error
	createErr  error
	touches    int            // TouchSession calls (session_lifecycle_test.go)
	touched    chan time.Time // if set, receives every TouchSession time
}

func newMemStore() *memStore {
	return &memStore{sessions: map[string]SessionRecord{}, principals: map[string]Principal{}}
}

func (m *memStore) CreateSession(_ context.Context, s SessionRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.createErr != nil {
		return m.createErr
	}
	m.sessions[s.ID] = s
	return nil
}

func (m *memStore) LookupSession(_ context.Context, id string, now time.Time) (SessionRecord, Principal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.lookupErr != nil {
		return SessionRecord{}, Principal{}, m.lookupErr
	}
	s, ok := m.sessions[id]
	if !ok || !now.Before(s.ExpiresAt) {
		return SessionRecord{}, Principal{}, ErrNoSession
	}
	p, ok := m.principals[s.UserID]
	if !ok {
		return SessionRecord{}, Principal{}, ErrNoSession
	}
	return s, p, nil
}

func (m *memStore) DeleteSession(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deleteErr != nil {
		return m.deleteErr
	}
	delete(m.sessions, id)
	return nil
}

func (m *memStore) lookupCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups
}

func (m *memStore) sessionCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

func (m *memStore) set(fn func(m *memStore)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(m)
}

// fakeSyncer records identities and stores a principal with the teams the
// test gave the user, as the real reconcile would.
type fakeSyncer struct {
	mu    sync.Mutex
	store *memStore
	teams map[string][]TeamRef
	err   error
	calls []Identity
}

func (s *fakeSyncer) Sync(_ context.Context, id Identity) error {
	s.mu.Lock()
	s.calls = append(s.calls, id)
	err, teams := s.err, s.teams[id.UserID]
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.store.set(func(m *memStore) {
		m.principals[id.UserID] = Principal{UserID: id.UserID, Email: id.Email, UPN: id.UPN,
			DisplayName: id.DisplayName, Role: "internal_user", Teams: teams}
	})
	return nil
}

func (s *fakeSyncer) set(fn func(s *fakeSyncer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (s *fakeSyncer) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeDirectory serves the admin API from fixed data.
type fakeDirectory struct {
	err error
}

func (d *fakeDirectory) Teams(context.Context) ([]AdminTeam, error) {
	if d.err != nil {
		return nil, d.err
	}
	return []AdminTeam{{TeamID: "t1", TeamAlias: "Engineering", Assigned: true,
		Members: []AdminMember{{UserID: aliceID, Role: "user", Source: "entra"}}}}, nil
}

func (d *fakeDirectory) Team(_ context.Context, id string) (AdminTeam, error) {
	if d.err != nil {
		return AdminTeam{}, d.err
	}
	if id != "t1" {
		return AdminTeam{}, ErrNotFound
	}
	return AdminTeam{TeamID: "t1", TeamAlias: "Engineering"}, nil
}

func (d *fakeDirectory) User(_ context.Context, id string) (AdminUser, error) {
	if d.err != nil {
		return AdminUser{}, d.err
	}
	if id != aliceID {
		return AdminUser{}, ErrNotFound
	}
	return AdminUser{UserID: aliceID, UserEmail: "alice@example.com", Teams: []string{"t1"}}, nil
}

func (d *fakeDirectory) SyncEvents(_ context.Context, userID, _ string, limit int) ([]AdminSyncEvent, error) {
	if d.err != nil {
		return nil, d.err
	}
	var out []AdminSyncEvent
	for i := 0; i < min(limit, 3); i++ {
		out = append(out, AdminSyncEvent{ID: int64(3 - i), UserID: userID, Outcome: "ok"})
	}
	return out, nil
}

// failingPinger is a DB that cannot be reached.
type failingPinger struct{}

func (failingPinger) Ping(context.Context) error { return errors.New("connection refused") }
