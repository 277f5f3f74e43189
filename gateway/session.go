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
	codec := securecookie.New(
		deriveKey(cfg.Secret, "session cookie hmac", 64),
		deriveKey(cfg.Secret, "session cookie aes", 32),
	)
	store := &sessions.CookieStore{
		Codecs: []securecookie.Codec{codec},
		Options: &sessions.Options{
			Path:     "/",
			HttpOnly: true,
			Secure:   secure,
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

	mu       sync.Mutex
	inflight map[string]*lookupCall
	// revoked remembers recently ended sessions until their cache TTL has
	// passed, so a lookup that raced with a sign-out cannot re-cache them.
	revoked map[string]time.Time
}

type lookupCall struct {
	done  chan struct{}
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
		inflight: map[string]*lookupCall{},
		revoked:  map[string]time.Time{},
	}
}

// resolve returns the request's signed-in principal, nil when there is no
// valid session, or an error when the session store failed (the caller
// answers 503 rather than bouncing the user to sign in again).
func (s *sessionResolver) resolve(r *http.Request) (*principalEntry, error) {
	c, err := r.Cookie(s.cookies.name)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	now := s.now()
	if e := s.cache.get(c.Value, now); e != nil {
		return e, nil
	}
	id, ok := s.cookies.decode(c.Value)
	if !ok {
		return nil, nil
	}
	e, err := s.lookup(r.Context(), hashSessionID(id), now)
	if err != nil || e == nil {
		return nil, err
	}
	s.mu.Lock()
	_, isRevoked := s.revoked[e.sessionID]
	s.mu.Unlock()
	if !isRevoked {
		s.cache.put(c.Value, e, now)
	}
	return e, nil
}

// lookup asks the store once per session id however many requests miss the
// cache at the same moment. The shared call is detached from any one
// client's cancellation and bounded on its own.
func (s *sessionResolver) lookup(ctx context.Context, sid string, now time.Time) (*principalEntry, error) {
	s.mu.Lock()
	if call, ok := s.inflight[sid]; ok {
		s.mu.Unlock()
		select {
		case <-call.done:
			return call.entry, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := &lookupCall{done: make(chan struct{})}
	s.inflight[sid] = call
	s.mu.Unlock()

	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionLookupLimit)
	call.entry, call.err = s.fetch(lctx, sid, now)
	cancel()

	s.mu.Lock()
	delete(s.inflight, sid)
	s.mu.Unlock()
	close(call.done)
	return call.entry, call.err
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
	return &principalEntry{
		sessionID:  rec.ID,
		expiresAt:  rec.ExpiresAt,
		freshUntil: now.Add(s.ttl),
		principal:  p,
		email:      headerValueOrEmpty(p.Email),
		upn:        headerValueOrEmpty(p.UPN),
		groups:     groupsHeader(p.Teams, s.maxGroup),
	}, nil
}

// revoke forgets a session on this replica at once.
func (s *sessionResolver) revoke(sid string) {
	now := s.now()
	s.mu.Lock()
	for id, until := range s.revoked {
		if now.After(until) {
			delete(s.revoked, id)
		}
	}
	s.revoked[sid] = now.Add(s.ttl)
	s.mu.Unlock()
	s.cache.deleteSession(sid)
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
