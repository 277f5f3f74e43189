package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// What the background sync and session re-validation need (migration
// 0006): named state kept between runs (the Graph deltaLink, the last run),
// one leader across replicas, ending a user's sessions with a reason, and
// re-validating a user inside a reconcile transaction.

// BackgroundStore is the part of Store behind background sync and session
// re-validation.
type BackgroundStore interface {
	// SyncState returns the value stored under name and when it was set;
	// ErrNotFound when it was never set.
	SyncState(ctx context.Context, name string) (value string, updatedAt time.Time, err error)
	// SetSyncState stores value under name (one upsert statement).
	SetSyncState(ctx context.Context, name, value string, now time.Time) error
	// TryLeader takes the leadership lock called name if no one holds it,
	// without waiting, and reports whether it did. The lock is held until
	// release is called (release is never nil and may be called more than
	// once). On PostgreSQL it is a session-level advisory lock on a
	// connection set aside for it (taken from the pool, so it counts
	// against WithMaxOpenConns), scoped to the current schema and apart
	// from Migrate's lock; it is shared by every replica, and if the
	// connection dies the lock goes with it. On SQLite, where one process
	// owns the database file, it is a lock in this process per file and name.
	TryLeader(ctx context.Context, name string) (release func(), ok bool, err error)
	// EndUserSessions marks every live (at now) session of the user as
	// ended by teamgate with reason, which must not be empty, and returns
	// how many it ended. Session no longer finds them; ActiveSession
	// returns them, with EndedReason, until they expire.
	EndUserSessions(ctx context.Context, userID, reason string, now time.Time) (int64, error)
	// KnownUserIDs returns which of ids are users, sorted (one statement).
	KnownUserIDs(ctx context.Context, ids []string) ([]string, error)
}

// BackgroundTx is the part of Tx that re-validates a known user.
type BackgroundTx interface {
	// LockUser returns the user and locks the row until the transaction
	// ends, so that a re-validation and a sign-in of the user serialize
	// (on SQLite the transaction holds the database's write lock already).
	// ErrNotFound for an unknown user.
	LockUser(ctx context.Context, id string) (User, error)
	// SetUserValidated records that the user was checked against Graph at
	// at. It only moves validated_at forward; ErrNotFound for an unknown
	// user.
	SetUserValidated(ctx context.Context, id string, at time.Time) error
	// CreateUser inserts a user who has not signed in yet (sync.create_users:
	// the background sync saw them in a team's group), with params, no
	// last_login_at, and validated_at now. An existing user is left as is
	// (created false). One statement.
	CreateUser(ctx context.Context, id UserIdentity, params UserParams, now time.Time) (created bool, err error)
}

// One statement each, the same text on both dialects (knownUserIDs and
// lockUser differ: see queries.go).
const (
	selectSyncState = "SELECT value, updated_at FROM sync_state WHERE name = $1"
	upsertSyncState = "INSERT INTO sync_state (name, value, updated_at) VALUES ($1, $2, $3)" +
		" ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
	endUserSessions = "UPDATE sessions SET ended_reason = $2 WHERE user_id = $1 AND expires_at > $3 AND ended_reason = ''"
	// Text comparison is time comparison on SQLite (see rows.go).
	createUser = "INSERT INTO users (" + userCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $9)" +
		" ON CONFLICT (id) DO NOTHING RETURNING id"
	setUserValidated = "UPDATE users SET validated_at = CASE WHEN validated_at IS NULL OR validated_at < $2 THEN $2 ELSE validated_at END" +
		" WHERE id = $1"

	// Key (7306, hash of schema and name): Migrate's lock is (7305, hash
	// of schema), so the two never meet, and tests in separate schemas of
	// one database do not contend.
	leaderKey     = "7306, hashtext(coalesce(current_schema(), '') || '/' || $1)"
	tryLeaderLock = "SELECT pg_try_advisory_lock(" + leaderKey + ")"
	unlockLeader  = "SELECT pg_advisory_unlock(" + leaderKey + ")"
)

func (s *sqlStore) SyncState(ctx context.Context, name string) (string, time.Time, error) {
	var row struct {
		Value     string `db:"value"`
		UpdatedAt dbTime `db:"updated_at"`
	}
	if err := s.reader().get(ctx, &row, selectSyncState, name); err != nil {
		return "", time.Time{}, wrapErr("sync state "+name, err)
	}
	return row.Value, row.UpdatedAt.T, nil
}

func (s *sqlStore) SetSyncState(ctx context.Context, name, value string, now time.Time) error {
	if name == "" {
		return fmt.Errorf("store: set sync state: empty name")
	}
	_, err := s.writer().exec(ctx, upsertSyncState, name, value, s.d.time(now))
	return wrapErr("set sync state "+name, err)
}

func (s *sqlStore) EndUserSessions(ctx context.Context, userID, reason string, now time.Time) (int64, error) {
	if reason == "" {
		return 0, fmt.Errorf("store: end user sessions: empty reason (it is what marks a session ended)")
	}
	// It notifies the replicas (sessions_notify.go).
	return s.changeSessions(ctx, "end user sessions", UserPayloadPrefix+userID, endUserSessions, s.d.notify.endUserSessions, userID, reason, s.d.time(now))
}

// KnownUserIDs: one statement on the read pool, none for an empty list.
func (s *sqlStore) KnownUserIDs(ctx context.Context, ids []string) ([]string, error) {
	out := []string{}
	if len(ids) == 0 {
		return out, nil
	}
	if err := s.reader().sel(ctx, &out, s.d.q.knownUserIDs, s.d.list(ids)); err != nil {
		return nil, wrapErr("known user ids", err)
	}
	return out, nil
}

func (s *sqlStore) TryLeader(ctx context.Context, name string) (func(), bool, error) {
	noop := func() {}
	if name == "" {
		return noop, false, fmt.Errorf("store: try leader: empty name")
	}
	if s.d.name == DialectSQLite {
		release, ok := sqliteLeaders.try(s.leaderScope + "\x00" + name)
		return release, ok, nil
	}
	conn, err := s.w.Connx(ctx)
	if err != nil {
		return noop, false, wrapErr("try leader "+name, err)
	}
	run := runner{ext: conn, n: &s.statements}
	var ok bool
	if err := run.get(ctx, &ok, tryLeaderLock, name); err != nil {
		// The server may have taken the lock before the error (a cancelled
		// context): drop the connection, which frees any lock it holds.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = conn.Close()
		return noop, false, wrapErr("try leader "+name, err)
	}
	if !ok {
		_ = conn.Close()
		return noop, false, nil
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			// Unlock even if the caller's context has ended; if that fails,
			// drop the connection, whose end frees the lock.
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var unlocked bool
			if err := run.get(uctx, &unlocked, unlockLeader, name); err != nil || !unlocked {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
			_ = conn.Close()
		})
	}
	return release, true, nil
}

// leaderLocks are the SQLite leadership locks of this process.
type leaderLocks struct {
	mu   sync.Mutex
	held map[string]bool
}

var sqliteLeaders = &leaderLocks{held: map[string]bool{}}

func (l *leaderLocks) try(key string) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[key] {
		return func() {}, false
	}
	l.held[key] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.held, key)
			l.mu.Unlock()
		})
	}, true
}

// sqliteLeaderScope names the database file for leaderLocks: every Store
// this process opens on one file shares its locks. Each in-memory database
// is its own.
func (s *sqlStore) sqliteLeaderScope(path string) string {
	if path == ":memory:" {
		return fmt.Sprintf("memory:%p", s)
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// LockUser: one statement.
func (t *sqlTx) LockUser(ctx context.Context, id string) (User, error) {
	var row userRow
	if err := t.run.get(ctx, &row, t.d.q.lockUser, id); err != nil {
		return User{}, wrapErr("lock user "+id, err)
	}
	return row.user(), nil
}

// SetUserValidated: one statement; the row is touched (not necessarily
// changed) whenever the user exists, so no row means no user.
func (t *sqlTx) SetUserValidated(ctx context.Context, id string, at time.Time) error {
	res, err := t.run.exec(ctx, setUserValidated, id, t.d.time(at))
	if err != nil {
		return wrapErr("set user validated", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrapErr("set user validated", err)
	} else if n == 0 {
		return fmt.Errorf("store: set user validated %s: %w", id, ErrNotFound)
	}
	return nil
}

// CreateUser: one statement.
func (t *sqlTx) CreateUser(ctx context.Context, id UserIdentity, p UserParams, now time.Time) (bool, error) {
	if id.ID == "" {
		return false, fmt.Errorf("store: create user: empty user id")
	}
	var inserted []string
	if err := t.run.sel(ctx, &inserted, createUser,
		id.ID, id.Email, id.UPN, id.DisplayName, p.UserRole, p.MaxBudget, p.BudgetDuration, jsonList(p.Models), t.d.time(now)); err != nil {
		return false, wrapErr("create user", err)
	}
	return len(inserted) > 0, nil
}

var (
	_ BackgroundStore = (*sqlStore)(nil)
	_ BackgroundTx    = (*sqlTx)(nil)
)
