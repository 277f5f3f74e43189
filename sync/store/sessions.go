package store

import (
	"context"
	"time"
)

// SessionActivity is a session with when it last made a request.
type SessionActivity struct {
	Session
	// LastSeenAt is the last recorded request; CreatedAt until one is
	// recorded. Writers record it at most every few minutes, so it may lag
	// the true last request by that much.
	LastSeenAt time.Time
	// EndedReason is non-empty when teamgate ended the session (see
	// EndUserSessions); ActiveSession still returns such a session until
	// it expires, so the gateway can tell the user why.
	EndedReason string
}

// SessionLifecycleStore is what idle timeouts and "sign out everywhere"
// need (migration 0005 adds sessions.last_seen_at).
type SessionLifecycleStore interface {
	// ActiveSession is Session plus LastSeenAt and EndedReason, in one
	// statement; it returns ErrNotFound for an unknown or expired (at now)
	// session, but returns an ended one (EndedReason set).
	ActiveSession(ctx context.Context, id string, now time.Time) (SessionActivity, error)
	// TouchSession records a request of the session at at. It only moves
	// last_seen_at forward (concurrent replicas cannot move it back) and is
	// a no-op for an unknown session.
	TouchSession(ctx context.Context, id string, at time.Time) error
	// DeleteUserSessions ends every session of a user and returns how many
	// there were.
	DeleteUserSessions(ctx context.Context, userID string) (int64, error)
	// CountActiveSessions returns how many sessions are live at now: not
	// expired and not ended by teamgate (one statement, on the expires_at
	// index). Idle timeouts are the gateway's and are not applied.
	CountActiveSessions(ctx context.Context, now time.Time) (int64, error)
}

// One statement each, the same text on both dialects.
const (
	activeSession = "SELECT " + sessionCols + ", coalesce(last_seen_at, created_at) AS last_seen_at, ended_reason" +
		" FROM sessions WHERE id = $1 AND expires_at > $2"
	touchSession       = "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND (last_seen_at IS NULL OR last_seen_at < $2)"
	deleteUserSessions = "DELETE FROM sessions WHERE user_id = $1"
	countSessions      = "SELECT count(*) FROM sessions WHERE expires_at > $1 AND ended_reason = ''"
)

type sessionActivityRow struct {
	sessionRow
	LastSeenAt  dbTime `db:"last_seen_at"`
	EndedReason string `db:"ended_reason"`
}

// ActiveSession returns the session and its last recorded request.
func (s *sqlStore) ActiveSession(ctx context.Context, id string, now time.Time) (SessionActivity, error) {
	var row sessionActivityRow
	if err := s.reader().get(ctx, &row, activeSession, id, s.d.time(now)); err != nil {
		return SessionActivity{}, wrapErr("active session", err)
	}
	return SessionActivity{
		Session:     Session{ID: row.ID, UserID: row.UserID, CreatedAt: row.CreatedAt.T, ExpiresAt: row.ExpiresAt.T},
		LastSeenAt:  row.LastSeenAt.T,
		EndedReason: row.EndedReason,
	}, nil
}

// TouchSession moves last_seen_at forward to at.
func (s *sqlStore) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.writer().exec(ctx, touchSession, id, s.d.time(at))
	return wrapErr("touch session", err)
}

// DeleteUserSessions deletes every session of userID. It notifies the
// replicas (sessions_notify.go).
func (s *sqlStore) DeleteUserSessions(ctx context.Context, userID string) (int64, error) {
	return s.changeSessions(ctx, "delete user sessions", UserPayloadPrefix+userID, deleteUserSessions, s.d.notify.deleteUserSessions, userID)
}

// CountActiveSessions counts the sessions live at now.
func (s *sqlStore) CountActiveSessions(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.reader().get(ctx, &n, countSessions, s.d.time(now))
	return n, wrapErr("count active sessions", err)
}
