package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// fakePages is an in-memory PageSource: teams, members and events fixed by
// the test, default-team choices written through to the session store's
// principals (as the real store and LookupSession would), and admin changes
// recorded.
type fakePages struct {
	mu       sync.Mutex
	sessions *memStore
	teams    []PageTeam              // ordered by alias
	members  map[string][]PageMember // by team id
	users    []PageUser
	events   []PageEvent
	err      error

	// lastEventQuery is the most recent SyncEvents query (filters reach the store).
	lastEventQuery EventPageQuery
	changes        []string // "add team user actor", "remove team user actor"
}

func newFakePages(sessions *memStore, nTeams int) *fakePages {
	f := &fakePages{sessions: sessions, members: map[string][]PageMember{}}
	for i := range nTeams {
		f.teams = append(f.teams, PageTeam{ID: fmt.Sprintf("team-%03d", i), Alias: fmt.Sprintf("Team %03d", i), Assigned: i%2 == 0})
	}
	return f
}

func (f *fakePages) MyTeams(_ context.Context, userID string) ([]PageTeam, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.sessions.mu.Lock()
	p := f.sessions.principals[userID]
	f.sessions.mu.Unlock()
	var out []PageTeam
	for _, ref := range p.Teams {
		out = append(out, PageTeam{ID: ref.ID, Alias: ref.Alias, BudgetDuration: "30d", Models: []string{"gpt-3.5-turbo"}})
	}
	return out, nil
}

func (f *fakePages) LastSync(_ context.Context, userID string) (PageEvent, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.events {
		if e.UserID == userID && e.Outcome != "admin" {
			return e, true, f.err
		}
	}
	return PageEvent{}, false, f.err
}

func (f *fakePages) SetDefaultTeam(_ context.Context, userID, teamID string) error {
	f.sessions.mu.Lock()
	defer f.sessions.mu.Unlock()
	p, ok := f.sessions.principals[userID]
	if !ok {
		return ErrNotFound
	}
	member := teamID == ""
	for _, t := range p.Teams {
		member = member || t.ID == teamID
	}
	if !member {
		return ErrNotFound
	}
	p.DefaultTeamID = teamID
	f.sessions.principals[userID] = p
	return nil
}

func (f *fakePages) Teams(_ context.Context, q PageQuery) ([]PageTeam, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var match []PageTeam
	for _, t := range f.teams {
		if q.Search == "" || strings.Contains(strings.ToLower(t.Alias+" "+t.ID), strings.ToLower(q.Search)) {
			match = append(match, t)
		}
	}
	return window(match, q.Offset, q.Limit), len(match), f.err
}

func (f *fakePages) Team(_ context.Context, id string) (PageTeam, []PageMember, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.teams {
		if t.ID == id {
			return t, f.members[id], f.err
		}
	}
	return PageTeam{}, nil, ErrNotFound
}

func (f *fakePages) Users(_ context.Context, q PageQuery) ([]PageUser, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return window(f.users, q.Offset, q.Limit), len(f.users), f.err
}

func (f *fakePages) SyncEvents(_ context.Context, q EventPageQuery) ([]PageEvent, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastEventQuery = q
	return window(f.events, q.Offset, q.Limit), len(f.events), f.err
}

func (f *fakePages) TeamAliases(_ context.Context, ids []string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, t := range f.teams {
		out[t.ID] = t.Alias
	}
	return out, f.err
}

func (f *fakePages) AddMember(_ context.Context, teamID, login, actor string, _ time.Time) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.UserID == login || strings.EqualFold(u.Email, login) {
			f.changes = append(f.changes, "add "+teamID+" "+u.UserID+" "+actor)
			f.members[teamID] = append(f.members[teamID], PageMember{UserID: u.UserID, Email: u.Email, Role: "user", Source: "manual"})
			return u.UserID, nil
		}
	}
	return "", ErrNotFound
}

func (f *fakePages) RemoveMember(_ context.Context, teamID, userID, actor string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ms := f.members[teamID]
	for i, m := range ms {
		if m.UserID == userID {
			f.members[teamID] = append(ms[:i:i], ms[i+1:]...)
			f.changes = append(f.changes, "remove "+teamID+" "+userID+" "+actor)
			return nil
		}
	}
	return ErrNotFound
}

func (f *fakePages) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.changes...)
}

func window[T any](items []T, offset, limit int) []T {
	if offset >= len(items) {
		return nil
	}
	items = items[offset:]
	if limit > 0 && limit < len(items) {
		items = items[:limit]
	}
	return items
}

// fakeOutbox is an OutboxAdmin without counts (the pages fall back to its
// listing).
type fakeOutbox struct{ pending, parked int }

func (o fakeOutbox) ListOutbox(_ context.Context, status string, limit int) ([]AdminOutboxOp, error) {
	n := map[string]int{"pending": o.pending, "parked": o.parked}[status]
	out := make([]AdminOutboxOp, min(n, limit))
	for i := range out {
		out[i] = AdminOutboxOp{ID: int64(i), Status: status, CreatedAt: time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)}
	}
	return out, nil
}

func (fakeOutbox) RetryOutbox(context.Context, int64) error { return nil }
