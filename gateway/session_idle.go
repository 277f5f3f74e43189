package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"time"
)

// session.idle_timeout ends a session that has made no request for that
// long. Activity is tracked in memory per cached session and written to the
// database at most once per touch interval per session and replica (a
// tenth of the timeout, at most 5 minutes), never per request. The recorded
// time may therefore lag the true last request by up to one interval, so a
// session is refused once it has been idle for idle_timeout plus one
// interval: never before idle_timeout, at most one interval after it.

// SessionActivityStore is implemented by session stores that can record
// activity; session.idle_timeout needs it.
type SessionActivityStore interface {
	// TouchSession records a request of session id (the stored, hashed id)
	// at at. It only ever moves the recorded time forward.
	TouchSession(ctx context.Context, id string, at time.Time) error
}

const (
	maxTouchInterval = 5 * time.Minute
	touchLimit       = 5 * time.Second
)

// idleTracker applies session.idle_timeout; its zero value (timeout 0) is
// off and costs nothing per request.
type idleTracker struct {
	timeout time.Duration
	every   time.Duration // touch interval
	store   SessionActivityStore
	log     *slog.Logger
}

func newIdleTracker(timeout time.Duration, store SessionStore) idleTracker {
	if timeout <= 0 {
		return idleTracker{}
	}
	t := idleTracker{timeout: timeout, every: min(timeout/10, maxTouchInterval),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	t.store, _ = store.(SessionActivityStore)
	return t
}

// entryActivity is shared by the concurrent requests of one cached session.
type entryActivity struct {
	lastSeen  atomic.Int64 // Unix nanoseconds of the latest request known here
	touchedAt atomic.Int64 // when activity was last written (or read) from the store
}

// loadActivity initialises the entry's activity from its stored record.
func (e *principalEntry) loadActivity(rec SessionRecord) {
	seen := rec.LastSeenAt
	if seen.IsZero() || seen.Before(rec.CreatedAt) {
		seen = rec.CreatedAt
	}
	e.activity = &entryActivity{}
	e.activity.lastSeen.Store(seen.UnixNano())
	e.activity.touchedAt.Store(seen.UnixNano())
}

// expired reports whether the session has been idle too long at now.
func (t idleTracker) expired(e *principalEntry, now time.Time) bool {
	if t.timeout <= 0 || e.activity == nil {
		return false
	}
	return now.UnixNano()-e.activity.lastSeen.Load() > int64(t.timeout+t.every)
}

// seen records a request at now and, once per interval, writes it to the
// store in the background (a failed write only makes the session look
// idler than it is, by at most one more interval).
func (t idleTracker) seen(e *principalEntry, now time.Time) {
	if t.timeout <= 0 || e.activity == nil {
		return
	}
	a, n := e.activity, now.UnixNano()
	for last := a.lastSeen.Load(); n > last && !a.lastSeen.CompareAndSwap(last, n); last = a.lastSeen.Load() {
	}
	touched := a.touchedAt.Load()
	if n-touched < int64(t.every) || !a.touchedAt.CompareAndSwap(touched, n) || t.store == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), touchLimit)
		defer cancel()
		if err := t.store.TouchSession(ctx, e.sessionID, now); err != nil {
			t.log.Warn("recording session activity failed", "error", err)
		}
	}()
}

// setUpSessionLifecycle checks that the session store supports what the
// session configuration asks for and gives the session code the logger.
func (g *Gateway) setUpSessionLifecycle() error {
	idle := &g.sessions.idle
	if idle.timeout > 0 && idle.store == nil {
		return errors.New("session.idle_timeout: the session store cannot record activity (it does not implement gateway.SessionActivityStore)")
	}
	idle.log = g.log
	return nil
}
