package gateway

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// The session cookie holds only an opaque random id, signed and encrypted;
// the session itself lives in the database (revocable, expiring), which
// stores the SHA-256 of the id so that a database leak does not yield
// usable cookies.

const (
	sessionValueKey    = "sid"
	sessionIDBytes     = 32
	sessionLookupLimit = 10 * time.Second
	maxCachedSessions  = 1 << 16
)

// deriveKey derives a key for one purpose from session.secret. Distinct
// labels keep the session and state cookies' signing and encryption keys
// independent of each other.
func deriveKey(secret, label string, n int) []byte {
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, "teamgate "+label, n)
	if err != nil {
		panic(fmt.Sprintf("gateway: derive %s key: %v", label, err)) // only for absurd lengths
	}
	return k
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand aborts the process instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSessionID is the database key of a session id.
func hashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// sessionCookies encodes the session cookie with gorilla/sessions.
type sessionCookies struct {
	name  string
	store *sessions.CookieStore
}

func newSessionCookies(cfg SessionConfig, secure bool) *sessionCookies {
	var codecs []securecookie.Codec
	for _, c := range cookieCodecs(cfg, "session cookie") {
		codecs = append(codecs, c)
	}
	store := &sessions.CookieStore{
		Codecs: codecs,
		Options: &sessions.Options{
			Path:     "/", // and no Domain: both required of a __Host- name
			HttpOnly: true,
			Secure:   cookieSecure(cfg.CookieName, secure),
			SameSite: http.SameSiteLaxMode,
		},
	}
	store.MaxAge(int(cfg.Lifetime.Std() / time.Second))
	return &sessionCookies{name: cfg.CookieName, store: store}
}

// decode returns the session id in a cookie value, or false when the value
// is forged, corrupt, too old or from another secret.
func (s *sessionCookies) decode(value string) (string, bool) {
	values := map[any]any{}
	if err := securecookie.DecodeMulti(s.name, value, &values, s.store.Codecs...); err != nil {
		return "", false
	}
	id, ok := values[sessionValueKey].(string)
	return id, ok && id != ""
}

func (s *sessionCookies) write(w http.ResponseWriter, r *http.Request, id string) error {
	sess := sessions.NewSession(s.store, s.name)
	opts := *s.store.Options
	sess.Options = &opts
	sess.Values[sessionValueKey] = id
	return s.store.Save(r, w, sess)
}

func (s *sessionCookies) expire(w http.ResponseWriter) {
	opts := *s.store.Options
	opts.MaxAge = -1
	http.SetCookie(w, sessions.NewCookie(s.name, "", &opts))
}

// sessionResolver turns a session cookie into a principal: the in-memory
// cache first, then the database, with concurrent misses for one session
// collapsed into a single lookup.
type sessionResolver struct {
	cookies  *sessionCookies
	store    SessionStore
	cache    *sessionCache
	ttl      time.Duration
	maxGroup int
	now      func() time.Time
	idle     idleTracker   // session.idle_timeout (session_idle.go)
	reval    *revalidation // session.revalidate_after (session_revalidate.go); nil: off

	mu       sync.Mutex
	inflight map[string]*lookupCall
	// epoch counts the revocations (sign-outs, "sign out everywhere") on
	// this replica. A lookup that overlapped one may hold a session the
	// revocation has just deleted: its result is neither cached nor shared
	// with requests that arrive after the revocation. Caching happens under
	// mu, like the revocation's cache purge, so the two cannot interleave.
	epoch uint64
}

type lookupCall struct {
	done  chan struct{}
	epoch uint64
	entry *principalEntry
	err   error
}

func newSessionResolver(cfg Config, cookies *sessionCookies, store SessionStore, now func() time.Time) *sessionResolver {
	return &sessionResolver{
		cookies:  cookies,
		store:    store,
		cache:    newSessionCache(maxCachedSessions),
		ttl:      cfg.Session.CacheTTL.Std(),
		maxGroup: cfg.Upstream.GroupsMaxBytes,
		now:      now,
		idle:     newIdleTracker(cfg.Session.IdleTimeout.Std(), store),
		inflight: map[string]*lookupCall{},
	}
}

// resolve returns the request's signed-in principal, nil when there is no
// valid session, or an error when the session store failed (the caller
// answers 503 rather than bouncing the user to sign in again).
func (s *sessionResolver) resolve(r *http.Request) (*principalEntry, error) {
	value, ok := cookieValue(r.Header, s.cookies.name)
	if !ok || value == "" {
		return nil, nil
	}
	now := s.now()
	if e := s.cache.get(value, now); e != nil {
		if s.idle.expired(e, now) {
			s.cache.deleteKey(value)
			return nil, nil
		}
		return s.admit(e, now)
	}
	id, ok := s.cookies.decode(value)
	if !ok {
		return nil, nil
	}
	e, epoch, err := s.lookup(r.Context(), hashSessionID(id), now)
	if err != nil || e == nil {
		return nil, err
	}
	if s.idle.expired(e, now) {
		return nil, nil
	}
	s.mu.Lock()
	if s.epoch == epoch {
		s.cache.put(value, e, now)
	}
	s.mu.Unlock()
	return s.admit(e, now)
}

// admit lets a looked-up session answer a request at now, unless teamgate
// ended it or its user is overdue for re-validation.
func (s *sessionResolver) admit(e *principalEntry, now time.Time) (*principalEntry, error) {
	if e.ended != "" {
		return nil, &sessionEndedError{reason: e.ended}
	}
	if err := s.reval.check(e, now); err != nil {
		return nil, err
	}
	s.idle.seen(e, now)
	return e, nil
}

// lookup asks the store once per session id however many requests miss the
// cache at the same moment. The shared call is detached from any one
// client's cancellation and bounded on its own. It also returns the epoch
// the call started in.
func (s *sessionResolver) lookup(ctx context.Context, sid string, now time.Time) (*principalEntry, uint64, error) {
	s.mu.Lock()
	epoch := s.epoch
	if call, ok := s.inflight[sid]; ok && call.epoch == epoch {
		s.mu.Unlock()
		select {
		case <-call.done:
			return call.entry, call.epoch, call.err
		case <-ctx.Done():
			return nil, epoch, ctx.Err()
		}
	}
	// No call, or one from before a revocation: start a fresh one.
	call := &lookupCall{done: make(chan struct{}), epoch: epoch}
	s.inflight[sid] = call
	s.mu.Unlock()

	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionLookupLimit)
	call.entry, call.err = s.fetch(lctx, sid, now)
	cancel()

	s.mu.Lock()
	if s.inflight[sid] == call {
		delete(s.inflight, sid)
	}
	s.mu.Unlock()
	close(call.done)
	return call.entry, call.epoch, call.err
}

func (s *sessionResolver) fetch(ctx context.Context, sid string, now time.Time) (*principalEntry, error) {
	rec, p, err := s.store.LookupSession(ctx, sid, now)
	if errors.Is(err, ErrNoSession) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up session: %w", err)
	}
	if !now.Before(rec.ExpiresAt) || p.UserID == "" || !validHeaderValue(p.UserID) {
		return nil, nil
	}
	if p.ValidatedAt.IsZero() || p.ValidatedAt.Before(rec.CreatedAt) {
		p.ValidatedAt = rec.CreatedAt // a sign-in checks the user
	}
	e := &principalEntry{
		ended:      rec.EndedReason,
		sessionID:  rec.ID,
		expiresAt:  rec.ExpiresAt,
		freshUntil: now.Add(s.ttl),
		principal:  p,
		email:      headerValueOrEmpty(p.Email),
		upn:        headerValueOrEmpty(p.UPN),
		groups:     groupsHeader(p.Teams, s.maxGroup),
	}
	e.loadActivity(rec)
	return e, nil
}

// revoke forgets a session on this replica at once.
func (s *sessionResolver) revoke(sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	s.cache.deleteSession(sid)
}

// revokeUser forgets every session of a user on this replica at once.
func (s *sessionResolver) revokeUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	s.cache.deleteUser(userID)
}

// create starts a session for userID and sets its cookie.
func (s *sessionResolver) create(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, lifetime time.Duration) error {
	id := randomToken(sessionIDBytes)
	now := s.now()
	rec := SessionRecord{ID: hashSessionID(id), UserID: userID, CreatedAt: now, ExpiresAt: now.Add(lifetime)}
	if err := s.store.CreateSession(ctx, rec); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return s.cookies.write(w, r, id)
}
