package gateway

import (
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
)

// stateLifetime bounds a sign-in from /oauth2/start to /oauth2/callback.
const stateLifetime = 10 * time.Minute

// stateBytes is the entropy of state and nonce; encoded it is 43 characters.
const stateBytes = 32

// authState is what the browser carries between /oauth2/start and the
// callback: the CSRF state, the ID-token nonce, the PKCE verifier and where
// to go afterwards. It travels signed and encrypted, so the verifier never
// leaves teamgate readable.
type authState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	RD       string `json:"r"`
	IssuedAt int64  `json:"t"`
}

// stateCookies stores one cookie per sign-in attempt, named after its state,
// so that sign-ins started in two tabs do not overwrite each other. The
// cookies are scoped to /oauth2/ and expire after stateLifetime. Their names
// start with the session cookie's, with a __Host- prefix turned into
// __Secure- (which, unlike __Host-, allows a path).
type stateCookies struct {
	prefix string
	codecs []securecookie.Codec
	secure bool
	now    func() time.Time
}

func newStateCookies(cfg SessionConfig, secure bool, now func() time.Time) *stateCookies {
	// One codec per session secret (the signing one first), so a sign-in
	// in flight while the secret rotates still completes.
	var codecs []securecookie.Codec
	for _, c := range cookieCodecs(cfg, "state cookie") {
		codecs = append(codecs, c.SetSerializer(securecookie.JSONEncoder{}).MaxAge(int(stateLifetime/time.Second)))
	}
	prefix := stateCookieNamePrefix(cfg.CookieName) // __Host- becomes __Secure- (cookieprefix.go)
	return &stateCookies{prefix: prefix, codecs: codecs, secure: cookieSecure(prefix, secure), now: now}
}

// validState reports whether s looks like a state we issued, before it is
// used in a cookie name.
func validState(s string) bool {
	return len(s) == 43 && isToken(s) // 32 random bytes, base64url
}

func (s *stateCookies) name(state string) string { return s.prefix + state[:16] }

func (s *stateCookies) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/oauth2/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
	}
}

// begin creates a fresh sign-in attempt and sets its cookie.
func (s *stateCookies) begin(w http.ResponseWriter, rd, verifier string) (authState, error) {
	st := authState{
		State:    randomToken(stateBytes),
		Nonce:    randomToken(stateBytes),
		Verifier: verifier,
		RD:       rd,
		IssuedAt: s.now().Unix(),
	}
	name := s.name(st.State)
	value, err := securecookie.EncodeMulti(name, st, s.codecs...)
	if err != nil {
		return authState{}, err
	}
	http.SetCookie(w, s.cookie(name, value, int(stateLifetime/time.Second)))
	return st, nil
}

// take returns the attempt named by state and deletes its cookie, so that
// each attempt can complete at most once. It fails for a missing, forged,
// mismatched or expired attempt.
func (s *stateCookies) take(w http.ResponseWriter, r *http.Request, state string) (authState, bool) {
	if !validState(state) {
		return authState{}, false
	}
	name := s.name(state)
	c, err := r.Cookie(name)
	if err != nil {
		return authState{}, false
	}
	http.SetCookie(w, s.cookie(name, "", -1))
	var st authState
	if err := securecookie.DecodeMulti(name, c.Value, &st, s.codecs...); err != nil {
		return authState{}, false
	}
	if subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		return authState{}, false
	}
	issued := time.Unix(st.IssuedAt, 0)
	now := s.now()
	if now.Before(issued.Add(-time.Minute)) || now.After(issued.Add(stateLifetime)) {
		return authState{}, false
	}
	return st, true
}
