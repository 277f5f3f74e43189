package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// InTx runs fn in one transaction on the write pool and retries it (calling
// fn again, so fn must not keep state across calls) while the database
// reports a transient conflict: PostgreSQL serialization failure (40001) or
// deadlock (40P01), SQLite busy or locked. fn must return such errors wrapped
// with %w for them to be recognised. Retries back off exponentially with
// jitter (10 ms, 20 ms, … capped at 250 ms), stop when ctx ends, and are
// bounded by WithTxAttempts (default 5 runs in all).
//
// fn must use only the Tx it is given: on SQLite a Store write method called
// from inside fn would wait for the single write connection fn holds.
func (s *sqlStore) InTx(ctx context.Context, fn func(Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.runTx(ctx, fn)
		if err == nil || !isTransient(err) {
			return err
		}
		if attempt >= s.attempts {
			return fmt.Errorf("store: transaction still conflicting after %d attempts: %w", attempt, err)
		}
		wait := backoff(attempt)
		s.log.DebugContext(ctx, "store: transient transaction conflict, retrying",
			"attempt", attempt, "backoff", wait, "err", err)
		if serr := s.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("store: transaction conflict, not retried: %w (%w)", err, serr)
		}
	}
}

// backoff is the pause before the attempt after attempt n (n >= 1): an
// exponential step with "equal jitter", so that two transactions that just
// collided do not collide again in lockstep.
func backoff(n int) time.Duration {
	const base, ceiling = 10 * time.Millisecond, 250 * time.Millisecond
	d := base << min(n-1, 5)
	d = min(d, ceiling)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// runTx is one attempt. BEGIN, COMMIT and ROLLBACK each count as a statement.
func (s *sqlStore) runTx(ctx context.Context, fn func(Tx) error) (err error) {
	s.statements.Add(1)
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return wrapErr("begin transaction", err)
	}
	done := false
	defer func() {
		if !done { // fn panicked
			s.statements.Add(1)
			_ = tx.Rollback()
		}
	}()
	var pending []string
	t := &sqlTx{d: s.d, run: runner{ext: tx, n: &s.statements, hub: s.hub, pending: &pending}}
	if err := fn(t); err != nil {
		done = true
		s.statements.Add(1)
		_ = tx.Rollback()
		return err
	}
	done = true
	s.statements.Add(1)
	if err := tx.Commit(); err != nil {
		return wrapErr("commit", err)
	}
	s.hub.publish(pending...)
	return nil
}

// sqlTx implements Tx. Each method sends at most the fixed number of
// statements noted on it, and none when its input list is empty.
type sqlTx struct {
	d   *dialect
	run runner
}

// UpsertUser: one statement on PostgreSQL; two on SQLite (insert-if-new,
// then refresh), where the transaction already holds the database's write
// lock from BEGIN IMMEDIATE, so the pair is race-free.
func (t *sqlTx) UpsertUser(ctx context.Context, id UserIdentity, p UserParams, now time.Time) (User, bool, error) {
	if id.ID == "" {
		return User{}, false, fmt.Errorf("store: upsert user: empty user id")
	}
	args := []any{id.ID, id.Email, id.UPN, id.DisplayName, p.UserRole, p.MaxBudget, p.BudgetDuration, jsonList(p.Models), t.d.time(now)}
	if t.d.name == DialectPostgres {
		var row struct {
			userRow
			Created bool `db:"created"`
		}
		if err := t.run.get(ctx, &row, t.d.q.upsertUser, args...); err != nil {
			return User{}, false, wrapErr("upsert user", err)
		}
		return row.user(), row.Created, nil
	}
	var inserted []string
	if err := t.run.sel(ctx, &inserted, t.d.q.insertUserIfNew, args...); err != nil {
		return User{}, false, wrapErr("upsert user", err)
	}
	var row userRow
	if err := t.run.get(ctx, &row, t.d.q.refreshUser, id.ID, id.Email, id.UPN, id.DisplayName, t.d.time(now)); err != nil {
		return User{}, false, wrapErr("upsert user", err)
	}
	return row.user(), len(inserted) > 0, nil
}

// TeamsByID: one statement; teams ordered by id.
func (t *sqlTx) TeamsByID(ctx context.Context, ids []string) ([]Team, error) {
	if len(ids) == 0 {
		return []Team{}, nil
	}
	var rows []teamRow
	if err := t.run.sel(ctx, &rows, t.d.q.teamsByID, t.d.list(ids)); err != nil {
		return nil, wrapErr("teams by id", err)
	}
	return teams(rows), nil
}

// AssignedTeamIDs: one statement; ids sorted.
func (t *sqlTx) AssignedTeamIDs(ctx context.Context) ([]string, error) {
	ids := []string{}
	if err := t.run.sel(ctx, &ids, t.d.q.assignedTeamIDs); err != nil {
		return nil, wrapErr("assigned team ids", err)
	}
	return ids, nil
}

// InsertTeams: one statement. Only ID, Alias, the params and Assigned of
// each team are used; created_at and updated_at are now. A repeated id keeps
// its first occurrence. Returns the inserted ids, sorted.
func (t *sqlTx) InsertTeams(ctx context.Context, in []Team, now time.Time) ([]string, error) {
	if len(in) == 0 {
		return []string{}, nil
	}
	byID := make(map[string]teamInput, len(in))
	ids := make([]string, 0, len(in))
	for _, tm := range in {
		if tm.ID == "" {
			return nil, fmt.Errorf("store: insert teams: empty team id")
		}
		if _, dup := byID[tm.ID]; dup {
			continue
		}
		ids = append(ids, tm.ID)
		byID[tm.ID] = teamInput{
			ID: tm.ID, Alias: tm.Alias, MaxBudget: tm.MaxBudget, BudgetDuration: tm.BudgetDuration,
			Models: encodeList(tm.Models), TPMLimit: tm.TPMLimit, RPMLimit: tm.RPMLimit, Assigned: tm.Assigned,
		}
	}
	rows := make([]teamInput, 0, len(ids))
	for _, id := range sortedUnique(ids) {
		rows = append(rows, byID[id])
	}
	doc, err := jsonText(rows)
	if err != nil {
		return nil, fmt.Errorf("store: insert teams: %w", err)
	}
	return t.ids(ctx, "insert teams", t.d.q.insertTeams, doc, t.d.time(now))
}

// RenameTeams: one statement; only rows whose alias differs are touched. On
// PostgreSQL a second one, when a team was renamed, tells the other replicas
// (on commit), whose cached sessions of its members hold the old alias.
func (t *sqlTx) RenameTeams(ctx context.Context, aliases map[string]string, now time.Time) ([]string, error) {
	if len(aliases) == 0 {
		return []string{}, nil
	}
	doc, err := jsonText(aliases)
	if err != nil {
		return nil, fmt.Errorf("store: rename teams: %w", err)
	}
	ids, err := t.ids(ctx, "rename teams", t.d.q.renameTeams, doc, t.d.time(now))
	if err != nil {
		return nil, err
	}
	return ids, t.d.notifyTeamsChanged(ctx, t.run, ids)
}

// SetAssigned: one statement; only rows whose flag differs are touched.
func (t *sqlTx) SetAssigned(ctx context.Context, ids []string, assigned bool, now time.Time) ([]string, error) {
	if len(ids) == 0 {
		return []string{}, nil
	}
	return t.ids(ctx, "set assigned", t.d.q.setAssigned, t.d.list(ids), assigned, t.d.time(now))
}

// UserMemberships: one statement; ordered by team id.
func (t *sqlTx) UserMemberships(ctx context.Context, userID string) ([]Membership, error) {
	var rows []membershipRow
	if err := t.run.sel(ctx, &rows, t.d.q.userMemberships, userID); err != nil {
		return nil, wrapErr("user memberships", err)
	}
	return memberships(rows), nil
}

// AddMemberships: one statement (and a notification on PostgreSQL when it
// changed something). A team id that does not exist fails the
// statement with an error wrapping ErrNotFound.
func (t *sqlTx) AddMemberships(ctx context.Context, userID string, teamIDs []string, role, source string, now time.Time) ([]string, error) {
	if len(teamIDs) == 0 {
		return []string{}, nil
	}
	ids, err := t.ids(ctx, "add memberships", t.d.q.addMemberships, userID, t.d.list(teamIDs), role, source, t.d.time(now))
	return ids, t.notifyIfChanged(ctx, userID, ids, err)
}

// RemoveMemberships: one statement (and a notification on PostgreSQL when
// it changed something).
func (t *sqlTx) RemoveMemberships(ctx context.Context, userID string, teamIDs []string, source string) ([]string, error) {
	if len(teamIDs) == 0 {
		return []string{}, nil
	}
	ids, err := t.ids(ctx, "remove memberships", t.d.q.removeMembers, userID, t.d.list(teamIDs), source)
	return ids, t.notifyIfChanged(ctx, userID, ids, err)
}

// notifyIfChanged, after a membership statement that changed ids (and did
// not fail), tells the other replicas (on commit) that the user's teams
// changed, so that their cached sessions of the user act for the new teams
// at once. PostgreSQL delivers identical notifications of one transaction
// once.
func (t *sqlTx) notifyIfChanged(ctx context.Context, userID string, ids []string, err error) error {
	if err != nil || len(ids) == 0 {
		return err
	}
	return t.d.notifyUserChanged(ctx, t.run, userID)
}

// InsertSyncEvent: one statement.
func (t *sqlTx) InsertSyncEvent(ctx context.Context, e SyncEvent) error {
	_, err := t.run.exec(ctx, t.d.q.insertEvent, t.d.eventArgs(e)...)
	return wrapErr("insert sync event", err)
}

// ids runs a statement returning one id column and sorts the ids (RETURNING
// order is unspecified).
func (t *sqlTx) ids(ctx context.Context, op, query string, args ...any) ([]string, error) {
	out := []string{}
	if err := t.run.sel(ctx, &out, query, args...); err != nil {
		return nil, wrapErr(op, err)
	}
	return sortedUnique(out), nil
}

var _ Tx = (*sqlTx)(nil)
