package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// Revocations heard by every replica. On PostgreSQL the statements that
// delete or end sessions also send a notification on the store's channel,
// in the same statement and so in the same transaction: PostgreSQL delivers
// it when the change commits, never before and never for a change rolled
// back. The payload is the session's stored id (the SHA-256 of the cookie's
// session id, never the id itself), "user:" and a user id, or "team:" and a
// team id. A notification is sent only when a row changed. Several
// deployments sharing one database in different schemas (search_path) use a
// channel each, named after their schema: one deployment's revocations never
// reach another's replicas. On SQLite the same payloads go to this process's
// watchers (sessions_local.go).

// SessionsChannel is the PostgreSQL notification channel of revocations of a
// store in the schema "public"; in any other schema it is SessionsChannel,
// "_" and the first 16 hex digits of the SHA-256 of the schema's name (a
// channel name is an identifier: at most 63 bytes).
const SessionsChannel = "teamgate_sessions"

// sessionsChannel is the channel of a store whose tables are in schema.
func sessionsChannel(schema string) string {
	if schema == "public" {
		return SessionsChannel
	}
	h := sha256.Sum256([]byte(schema))
	return SessionsChannel + "_" + hex.EncodeToString(h[:8])
}

// channelToken stands for the channel's name (a quoted literal) in the
// statements below until the store knows it (pgNotifySQL).
const channelToken = "{channel}"

// pgNotifySQL holds the notifying statements of a store, its channel named
// in them. The channel is worked out once, when the store opens, from the
// schema its tables resolve to (current_schema(): the first schema of
// search_path that exists), and the listener uses the same value: the two
// agree by construction.
type pgNotifySQL struct {
	channel                                            string
	deleteSession, deleteUserSessions, endUserSessions string
	userChanged, teamsChanged                          string
}

func newPGNotifySQL(channel string) pgNotifySQL {
	lit := pq.QuoteLiteral(channel)
	f := func(q string) string { return strings.ReplaceAll(q, channelToken, lit) }
	return pgNotifySQL{
		channel:            channel,
		deleteSession:      f(pgDeleteSession),
		deleteUserSessions: f(pgDeleteUserSessions),
		endUserSessions:    f(pgEndUserSessions),
		userChanged:        f(pgNotifyUserChanged),
		teamsChanged:       f(pgNotifyTeamsChanged),
	}
}

// initChannel works out the store's channel (PostgreSQL).
func (s *sqlStore) initChannel(ctx context.Context) error {
	var schema sql.NullString
	if err := s.reader().get(ctx, &schema, "SELECT current_schema()"); err != nil {
		return wrapErr("current schema", err)
	}
	if !schema.Valid {
		return errors.New("store: no schema of the connection's search_path exists (database.url's search_path names none that was created)")
	}
	s.d.notify = newPGNotifySQL(sessionsChannel(schema.String))
	return nil
}

// UserPayloadPrefix starts a notification payload naming a user: every
// session of the user was deleted or ended, or the user's teams changed.
const UserPayloadPrefix = "user:"

// TeamPayloadPrefix starts a notification payload naming a team that was
// renamed: its members' cached sessions name it, and order their teams, by
// its old alias.
const TeamPayloadPrefix = "team:"

// One statement each: the change, then one notification per changed row
// (PostgreSQL folds identical notifications of a transaction into one), and
// the number of rows changed.
const (
	pgDeleteSession      = "WITH d AS (DELETE FROM sessions WHERE id = $1 RETURNING id)" + pgNotifyEachSession
	pgDeleteUserSessions = "WITH d AS (DELETE FROM sessions WHERE user_id = $1 RETURNING id)" + pgNotifyUser
	pgEndUserSessions    = "WITH d AS (UPDATE sessions SET ended_reason = $2 WHERE user_id = $1 AND expires_at > $3 AND ended_reason = '' RETURNING id)" + pgNotifyUser

	pgNotifyEachSession = " SELECT count(*) FROM (SELECT pg_notify(" + channelToken + ", d.id) FROM d) n"
	pgNotifyUser        = " SELECT count(*) FROM (SELECT pg_notify(" + channelToken + ", '" + UserPayloadPrefix + "' || $1) FROM d) n"
)

// pgNotifyUserChanged tells every replica that a user's teams or default
// team changed: each forgets the user's cached sessions, which are read
// again (with the new teams) on their next request.
const pgNotifyUserChanged = "SELECT pg_notify(" + channelToken + ", '" + UserPayloadPrefix + "' || $1)"

// pgNotifyTeamsChanged tells every replica that teams were renamed: each
// forgets the cached sessions of their members (one notification per team).
const pgNotifyTeamsChanged = "SELECT count(*) FROM (SELECT pg_notify(" + channelToken + ", '" + TeamPayloadPrefix + "' || x) FROM unnest($1::text[]) x) n"

// notifyTeamsChanged sends pgNotifyTeamsChanged for ids on PostgreSQL (in
// r's transaction: delivered on commit); on SQLite it tells this process's
// watchers (on commit too).
func (d *dialect) notifyTeamsChanged(ctx context.Context, r runner, ids []string) error {
	if d.name != DialectPostgres {
		for _, id := range ids {
			r.note(TeamPayloadPrefix + id)
		}
		return nil
	}
	if len(ids) == 0 {
		return nil
	}
	var n int64
	return wrapErr("notify replicas", r.get(ctx, &n, d.notify.teamsChanged, d.list(ids)))
}

// notifyUserChanged sends pgNotifyUserChanged on PostgreSQL (inside r's
// transaction, if any, so it is delivered on commit); on SQLite it tells
// this process's watchers, on commit too.
func (d *dialect) notifyUserChanged(ctx context.Context, r runner, userID string) error {
	if d.name != DialectPostgres {
		r.note(UserPayloadPrefix + userID)
		return nil
	}
	_, err := r.exec(ctx, d.notify.userChanged, userID)
	return wrapErr("notify replicas", err)
}

// changeSessions runs a session deletion or ending that notifies the other
// replicas (pgQuery, on PostgreSQL) or this process's watchers (query and
// then payload, on SQLite: one process) and returns how many sessions it
// changed.
func (s *sqlStore) changeSessions(ctx context.Context, what, payload, query, pgQuery string, args ...any) (int64, error) {
	if s.d.name == DialectPostgres {
		var n int64
		err := s.writer().get(ctx, &n, pgQuery, args...)
		return n, wrapErr(what, err)
	}
	res, err := s.writer().exec(ctx, query, args...)
	if err != nil {
		return 0, wrapErr(what, err)
	}
	n, err := res.RowsAffected()
	if err == nil && n > 0 {
		s.writer().note(payload)
	}
	return n, wrapErr(what, err)
}

// SessionEvents are the revocations a SessionWatcher hears. The functions
// run one at a time, on the watcher's goroutine.
type SessionEvents struct {
	// Session: the session with this stored id was deleted.
	Session func(id string)
	// User: every session of the user was deleted or ended, or the user's
	// teams changed; forget the user's sessions.
	User func(userID string)
	// Team (optional): the team was renamed; forget its members' sessions.
	// Without it a rename forgets every session (Reset(false)).
	Team func(teamID string)
	// Reset: notifications may have been missed (the watcher connected, or
	// reconnected after losing its connection); forget every session.
	Reset func(reconnected bool)
	// Disconnected (optional): the connection was lost; the watcher
	// reconnects with a backoff.
	Disconnected func(err error)
}

// SessionWatcher is implemented by stores whose revocations every replica
// can hear at once: on PostgreSQL through LISTEN/NOTIFY, on SQLite (one
// process) through an in-process hub (sessions_local.go).
type SessionWatcher interface {
	// WatchSessions listens (on PostgreSQL on a connection of its own)
	// until Close. It does not wait for the connection; Ready is closed
	// once listening.
	// It returns errors.ErrUnsupported for a store that cannot watch.
	WatchSessions(ev SessionEvents) (*SessionWatch, error)
}

// SessionWatch is a running watcher.
type SessionWatch struct {
	name    string // the listener connection's application_name
	channel string // the channel it listens on
	// closeFn (SQLite) ends the subscription to the store's hub.
	closeFn func()
	l       *pq.Listener
	ready   chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// Reconnect backoff of the listener, and how often it checks its connection
// when no notification arrives (a dead TCP connection may otherwise go
// unnoticed).
const (
	watchMinReconnect = 100 * time.Millisecond
	watchMaxReconnect = 5 * time.Second
	watchPing         = time.Minute
	watchCloseWait    = watchMaxReconnect + 5*time.Second
)

// WatchSessions starts a watcher (see SessionWatcher).
func (s *sqlStore) WatchSessions(ev SessionEvents) (*SessionWatch, error) {
	if s.hub != nil {
		return s.watchLocal(ev), nil
	}
	if s.d.name != DialectPostgres || s.dsn == "" {
		return nil, errors.ErrUnsupported
	}
	dsn, name, err := listenerDSN(s.dsn)
	if err != nil {
		return nil, err
	}
	// The channel the notifying statements name (worked out at Open).
	w := &SessionWatch{name: name, channel: s.d.notify.channel, ready: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	w.l = pq.NewListener(dsn, watchMinReconnect, watchMaxReconnect, func(t pq.ListenerEventType, err error) {
		if t == pq.ListenerEventDisconnected && ev.Disconnected != nil {
			ev.Disconnected(err)
		}
	})
	go w.run(ev)
	return w, nil
}

// listenerDSN gives the listener's connection an application_name of its
// own, the operator's (default "teamgate") plus "/sessions-" and a random
// suffix, so that an operator (or a test) can tell it from the pool's
// connections in pg_stat_activity.
func listenerDSN(dsn string) (string, string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", errors.New("session listener: malformed database URL") // never echo it: it may hold a password
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	q := u.Query()
	name := q.Get("application_name")
	if name == "" {
		name = "teamgate"
	}
	name += "/sessions-" + hex.EncodeToString(b[:])
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String(), name, nil
}

// ApplicationName is the listener connection's application_name ("" on
// SQLite).
func (w *SessionWatch) ApplicationName() string { return w.name }

// Channel is the notification channel the watcher listens on: this store's
// schema's (see SessionsChannel); "" on SQLite.
func (w *SessionWatch) Channel() string { return w.channel }

// Ready is closed once the watcher listens (after its first Reset).
func (w *SessionWatch) Ready() <-chan struct{} { return w.ready }

// Close stops the watcher and waits (boundedly) for its goroutines.
func (w *SessionWatch) Close() {
	w.once.Do(func() {
		close(w.stop)
		if w.closeFn != nil {
			w.closeFn()
		}
		if w.l != nil {
			_ = w.l.Close()
		}
		select {
		case <-w.done:
		case <-time.After(watchCloseWait):
		}
	})
}

func (w *SessionWatch) run(ev SessionEvents) {
	defer close(w.done)
	listening := make(chan error, 1)
	go func() { listening <- w.l.Listen(w.channel) }()
	ping := time.NewTicker(watchPing)
	defer ping.Stop()
	var (
		pinging  sync.WaitGroup
		pingBusy atomic.Bool
	)
	defer pinging.Wait() // Close ends a ping in progress: it closes the connection
	notify, stop := w.l.NotificationChannel(), w.stop
	for {
		select {
		case err := <-listening:
			listening = nil
			if err != nil { // closed before it could listen
				continue
			}
			// Sessions cached before this point were cached unheard.
			ev.Reset(false)
			close(w.ready)
		case n, ok := <-notify:
			if !ok { // closed: the listener's goroutine has ended
				if listening != nil {
					<-listening
				}
				return
			}
			switch {
			case n == nil: // reconnected (pq sends nil after re-listening)
				ev.Reset(true)
			default:
				dispatch(ev, n.Extra)
			}
		case <-ping.C:
			// Not here: a ping's answer may queue behind the notifications
			// this loop has yet to take. A failed ping ends in a reconnect.
			if pingBusy.CompareAndSwap(false, true) {
				pinging.Go(func() { defer pingBusy.Store(false); _ = w.l.Ping() })
			}
		case <-stop:
			// Keep draining notify until pq closes it (above).
			stop = nil
		}
	}
}
