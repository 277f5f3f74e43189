package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/teamgate/teamgate/web"
)

// session.revalidate_after re-checks a signed-in user with the directory
// once their last check (sign-in or re-validation) is that old: a disabled,
// deleted or unassigned account loses its sessions, and group changes reach
// the user's teams, without a new sign-in.
//
// The check runs off the request path: the request that finds the user due
// starts it in the background and is served as usual; when it finishes the
// user's cached sessions are dropped on this replica, so the next request
// reads the outcome (new teams, or the ended session) from the database.
// Other replicas hear it from the store at once (session_notify.go), or
// read it when their cache entry expires (session.cache_ttl).
// One check per user runs at a time per replica; after a failure (Graph
// down) the next try waits revalidateRetry. While Graph stays unreachable
// sessions keep working for session.revalidate_grace beyond
// revalidate_after; after that a request is refused (not signed out: the
// session works again as soon as a check succeeds).

// Revalidator re-checks a signed-in user with the directory. It returns
// ended = true when it ended the user's sessions, with reason one of the
// SessionEnded* values.
type Revalidator interface {
	Revalidate(ctx context.Context, userID string) (ended bool, reason string, err error)
}

// Why a session was ended (SessionRecord.EndedReason).
const (
	SessionEndedDisabled   = "account_disabled"
	SessionEndedDeleted    = "account_deleted"
	SessionEndedUnassigned = "not_assigned"
	// sessionUnverified is not stored: a request is refused while the
	// user could not be re-checked for longer than the grace.
	sessionUnverified = "unverified"
)

const (
	revalidateLimit = time.Minute      // one re-check, Graph retries included
	revalidateRetry = 30 * time.Second // pause after a failed re-check
)

// sessionEndedError is what resolve returns for a session teamgate ended
// or may not use until its user is re-checked.
type sessionEndedError struct{ reason string }

func (e *sessionEndedError) Error() string { return "session ended: " + e.reason }

// revalidation applies session.revalidate_after; its zero value is off.
type revalidation struct {
	after, grace time.Duration
	rv           Revalidator
	log          *slog.Logger
	now          func() time.Time
	// done is called with the user id after a check, to drop the user's
	// cached sessions.
	done func(userID string)

	mu      sync.Mutex
	running map[string]bool
	retryAt map[string]time.Time
}

// check starts a re-check when the entry's user is due and reports an
// error when the user may not be served until one succeeds.
func (v *revalidation) check(e *principalEntry, now time.Time) error {
	if v == nil || v.after <= 0 {
		return nil
	}
	age := now.Sub(e.principal.ValidatedAt)
	if age <= v.after {
		return nil
	}
	v.start(e.principal.UserID, now)
	if age > v.after+v.grace {
		return &sessionEndedError{reason: sessionUnverified}
	}
	return nil
}

func (v *revalidation) start(userID string, now time.Time) {
	v.mu.Lock()
	if v.running[userID] || now.Before(v.retryAt[userID]) {
		v.mu.Unlock()
		return
	}
	v.running[userID] = true
	delete(v.retryAt, userID)
	v.mu.Unlock()
	go v.run(userID)
}

func (v *revalidation) run(userID string) {
	ctx, cancel := context.WithTimeout(context.Background(), revalidateLimit)
	defer cancel()
	ended, reason, err := v.rv.Revalidate(ctx, userID)
	if err == nil {
		// Before the check counts as finished: a request that arrives
		// after it must read the outcome, not the cached entry.
		v.done(userID)
	}
	v.mu.Lock()
	delete(v.running, userID)
	if err != nil {
		now := v.now()
		if len(v.retryAt) >= 1024 { // a long outage: forget pauses that are over
			for id, at := range v.retryAt {
				if !now.Before(at) {
					delete(v.retryAt, id)
				}
			}
		}
		v.retryAt[userID] = now.Add(revalidateRetry)
	}
	v.mu.Unlock()
	switch {
	case err != nil:
		v.log.Warn("session re-validation failed; sessions keep working within session.revalidate_grace",
			"user_id", userID, "error", err)
	case ended:
		v.log.Info("session re-validation ended the user's sessions", "user_id", userID, "reason", reason)
	default:
		v.log.Debug("session re-validated", "user_id", userID)
	}
}

// setUpRevalidation wires session.revalidate_after.
func (g *Gateway) setUpRevalidation() error {
	s := g.cfg.Session
	if s.RevalidateAfter <= 0 {
		return nil
	}
	if g.deps.Revalidator == nil {
		return errors.New("gateway: Deps.Revalidator is required when session.revalidate_after is set")
	}
	g.sessions.reval = &revalidation{
		after: s.RevalidateAfter.Std(), grace: s.RevalidateGrace.Std(),
		rv: g.deps.Revalidator, log: g.log, now: g.now,
		done:    g.sessions.revokeUser,
		running: map[string]bool{}, retryAt: map[string]time.Time{},
	}
	return nil
}

// errSession answers a request whose session could not be used: ended by
// teamgate (with why and what to do), or the session store down.
func errSession(cause error) *statusError {
	var ended *sessionEndedError
	if !errors.As(cause, &ended) {
		return errSessionStoreDown(cause)
	}
	signIn := &web.Link{Href: "/oauth2/start", Label: "Sign in again"}
	switch ended.reason {
	case SessionEndedDisabled:
		return &statusError{Status: http.StatusForbidden, Title: "Your session was ended",
			Message: "Your account is disabled in Microsoft Entra ID, so teamgate ended your session.",
			Next:    "If you think this is a mistake, contact your administrator."}
	case SessionEndedDeleted:
		return &statusError{Status: http.StatusForbidden, Title: "Your session was ended",
			Message: "Your account no longer exists in Microsoft Entra ID, so teamgate ended your session.",
			Next:    "If you think this is a mistake, contact your administrator."}
	case SessionEndedUnassigned:
		return &statusError{Status: http.StatusForbidden, Title: "Your session was ended",
			Message: "Your account is no longer assigned to this application in Microsoft Entra ID, so teamgate ended your session.",
			Next:    "Ask your administrator to assign you to the application, then sign in again.", Action: signIn}
	case sessionUnverified:
		return &statusError{Status: http.StatusServiceUnavailable, Title: "teamgate cannot verify your account",
			Message: "teamgate has not been able to re-check your account with Microsoft Entra ID for too long, so it cannot let this request through.",
			Next:    "Wait a moment and try again, or sign in again. If this persists, contact your administrator.",
			Action:  signIn, Cause: cause}
	default:
		return &statusError{Status: http.StatusUnauthorized, Title: "Your session was ended",
			Message: "teamgate ended your session.",
			Next:    "Sign in again.", Action: signIn}
	}
}
