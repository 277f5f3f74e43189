package store

import (
	"context"
	"fmt"
	"time"
)

// Writes outside reconcile: admin actions, failed-sync events and sessions.
// Each is one statement on the write pool, in its own implicit transaction.

// RecordSyncEvent stores an event; the user need not exist (a reconcile may
// fail before its user was ever written).
func (s *sqlStore) RecordSyncEvent(ctx context.Context, e SyncEvent) error {
	_, err := s.writer().exec(ctx, s.d.q.insertEvent, s.d.eventArgs(e)...)
	return wrapErr("record sync event", err)
}

// AddManualMembership adds the user to the team as a manual member, or turns
// an existing membership manual (with the new role), so that reconcile will
// never remove it. Unknown team or user: an error wrapping ErrNotFound.
// The replicas are told that the user changed (sessions_notify.go).
func (s *sqlStore) AddManualMembership(ctx context.Context, teamID, userID, role string, now time.Time) error {
	if _, err := s.writer().exec(ctx, s.d.q.addManualMembership, teamID, userID, role, s.d.time(now)); err != nil {
		return wrapErr("add manual membership", err)
	}
	return s.d.notifyUserChanged(ctx, s.writer(), userID)
}

// RemoveMembership deletes the membership whatever its source; ErrNotFound
// if there was none. The replicas are told that the user changed.
func (s *sqlStore) RemoveMembership(ctx context.Context, teamID, userID string) error {
	res, err := s.writer().exec(ctx, s.d.q.removeMembership, teamID, userID)
	if err != nil {
		return wrapErr("remove membership", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrapErr("remove membership", err)
	} else if n == 0 {
		return fmt.Errorf("store: remove membership: %w", ErrNotFound)
	}
	return s.d.notifyUserChanged(ctx, s.writer(), userID)
}

// CreateSession stores a session. A duplicate id wraps ErrConflict; an
// unknown user wraps ErrNotFound.
func (s *sqlStore) CreateSession(ctx context.Context, sess Session) error {
	_, err := s.writer().exec(ctx, s.d.q.createSession, sess.ID, sess.UserID, s.d.time(sess.CreatedAt), s.d.time(sess.ExpiresAt))
	return wrapErr("create session", err)
}

// Session returns the session if it exists, expires after now and was not
// ended by teamgate (EndUserSessions).
func (s *sqlStore) Session(ctx context.Context, id string, now time.Time) (Session, error) {
	var row sessionRow
	if err := s.reader().get(ctx, &row, s.d.q.session, id, s.d.time(now)); err != nil {
		return Session{}, wrapErr("session", err)
	}
	return Session{ID: row.ID, UserID: row.UserID, CreatedAt: row.CreatedAt.T, ExpiresAt: row.ExpiresAt.T}, nil
}

// DeleteSession is idempotent: deleting an unknown session is not an error
// (signing out twice is fine).
// It notifies the replicas (sessions_notify.go).
func (s *sqlStore) DeleteSession(ctx context.Context, id string) error {
	_, err := s.changeSessions(ctx, "delete session", id, s.d.q.deleteSession, s.d.notify.deleteSession, id)
	return err
}

// DeleteExpiredSessions deletes sessions expiring at or before now and
// returns how many it deleted.
func (s *sqlStore) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.writer().exec(ctx, s.d.q.deleteExpiredSessions, s.d.time(now))
	if err != nil {
		return 0, wrapErr("delete expired sessions", err)
	}
	n, err := res.RowsAffected()
	return n, wrapErr("delete expired sessions", err)
}
