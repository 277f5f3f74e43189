package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/teamgate/teamgate/web"
)

// The pages' forms change state (a user's default team, a team's members),
// so every POST must come from teamgate's own page in the same session. Two
// independent checks guard them:
//
//   - the browser's word: Sec-Fetch-Site (or, from older browsers, Origin)
//     must say same-origin, via net/http's CrossOriginProtection; the public
//     URL's origin is trusted too, for deployments whose proxy rewrites Host;
//   - a token in the form: the HMAC-SHA256 of the session's database id under
//     a key derived from session.secret. It needs no storage, dies with the
//     session, and differs per session, so a token seen in one session is
//     useless in another.
//
// The session cookie is also SameSite=Lax, which keeps it off cross-site
// POSTs in current browsers; the checks above do not rely on that.

// csrfField is the form field that carries the token.
const csrfField = "csrf_token"

var (
	errCSRFOrigin = errors.New("cross-origin form submission")
	// errCrossOriginRequest: a signed-in browser's proxied request that
	// another origin made it send (proxy.go).
	errCrossOriginRequest = errors.New("cross-origin request with a session")
	errCSRFToken          = errors.New("missing or invalid form token")
)

type csrfGuard struct {
	key    []byte
	origin *http.CrossOriginProtection
}

func newCSRFGuard(secret, publicURL string) *csrfGuard {
	cop := http.NewCrossOriginProtection()
	if u, err := url.Parse(publicURL); err == nil && u.Scheme != "" && u.Host != "" {
		// Validated by Config.Validate; a failure here only loses the extra
		// trusted origin, never the checks.
		_ = cop.AddTrustedOrigin(browserOrigin(u))
	}
	return &csrfGuard{key: deriveKey(secret, "csrf token", 32), origin: cop}
}

// browserOrigin is u's origin as a browser writes it in Origin: scheme and
// host in lower case, without the scheme's default port.
// CrossOriginProtection compares trusted origins exactly.
func browserOrigin(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") { // IPv6
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(scheme == "https" && p == "443") && !(scheme == "http" && p == "80") {
		host += ":" + p
	}
	return scheme + "://" + host
}

// token is the form token of a session (its database id, see principalEntry).
func (c *csrfGuard) token(sessionID string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// check verifies a state-changing request of the given session. The form
// must already be parsed (or parseable: check parses it).
func (c *csrfGuard) check(r *http.Request, sessionID string) error {
	if err := c.origin.Check(r); err != nil {
		return errCSRFOrigin
	}
	got := r.PostFormValue(csrfField)
	if got == "" || !hmac.Equal([]byte(got), []byte(c.token(sessionID))) {
		return errCSRFToken
	}
	return nil
}

// errFormExpired answers a refused form: the page the form came from is
// stale (another session) or the request was forged; either way the user's
// way forward is to reload the page and try again.
func errFormExpired(back string, cause error) *statusError {
	return &statusError{Status: http.StatusForbidden, Title: "This form has expired",
		Message: "teamgate did not accept this form: it was not sent from the current teamgate page of your session.",
		Next:    "Go back, reload the page and submit the form again.",
		Action:  &web.Link{Href: back, Label: "Back"}, Cause: cause}
}
