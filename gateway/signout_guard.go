package gateway

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/teamgate/teamgate/web"
)

// GET /oauth2/sign_out is part of the public contract: a plain link signs
// out. Left at that, any other site could sign teamgate's users out with a
// link or an image (a forced logout). So sign-out follows the browser's word
// about where the request came from:
//
//   - a navigation (Sec-Fetch-Mode: navigate) from teamgate's own pages or
//     the proxied application (Sec-Fetch-Site: same-origin), typed or
//     bookmarked (none), or a GET from a client that sends no Sec-Fetch
//     headers and no foreign Origin or Referer, signs out as before;
//   - a GET that is not a navigation (an image, a script, a fetch: any
//     Sec-Fetch-Mode but navigate), even from the same origin, shows the
//     confirmation page;
//   - a GET started on another site (Sec-Fetch-Site cross-site or same-site,
//     or an Origin or Referer of another origin) shows a confirmation page
//     instead, whose form posts back with the session's form token;
//   - a POST passes the checks of every other form: same origin and, when
//     the browser holds a session cookie, that session's form token.

// signOutAllowed reports whether handleSignOut may end the session. When it
// may not, it has answered the request.
func (g *Gateway) signOutAllowed(c *gin.Context) bool {
	w, r := c.Writer, c.Request
	sid := g.signOutSessionID(r)
	if r.Method != http.MethodPost {
		if !g.foreignRequest(r) {
			return true
		}
		info := requestInfoFrom(r.Context())
		g.log.Info("sign-out link from another site: asking the user to confirm", "request_id", info.id)
		page := web.SignOutConfirmPage{Chrome: web.Chrome{RequestID: info.id}, Action: "/oauth2/sign_out", CancelHref: "/"}
		if sid != "" {
			page.CSRFToken = g.csrf.token(sid)
		}
		g.allowSignOutForm(w.Header())
		g.renderPage(w, r, http.StatusOK, func(out io.Writer) error { return web.RenderSignOutConfirm(out, page) })
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		g.writeError(w, r, &statusError{Status: http.StatusBadRequest, Title: "Form not accepted",
			Message: "teamgate could not read this form.", Next: "Go back and try again.", Cause: err})
		return false
	}
	var err error
	if sid != "" {
		err = g.csrf.check(r, sid)
	} else if g.csrf.origin.Check(r) != nil { // no session to protect, but no cross-site Entra sign-out either
		err = errCSRFOrigin
	}
	if err != nil {
		g.writeError(w, r, errFormExpired("/", err))
		return false
	}
	return true
}

// allowSignOutForm lets the confirmation form's answer, a redirect to
// Entra's end_session_endpoint, through the page's CSP: browsers apply
// form-action to every redirect a form submission follows.
func (g *Gateway) allowSignOutForm(h http.Header) {
	client := g.oidc.Load()
	if client == nil {
		return
	}
	if o := originOf(client.endSession); o != "" {
		h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"),
			"form-action 'self'", "form-action 'self' "+o, 1))
	}
}

// signOutSessionID is the database id of the session the browser's cookie
// names ("" without a readable cookie). It needs no store lookup, so the
// form token of a session the database no longer has still checks out.
func (g *Gateway) signOutSessionID(r *http.Request) string {
	ck, err := r.Cookie(g.cfg.Session.CookieName)
	if err != nil || ck.Value == "" {
		return ""
	}
	id, ok := g.sessions.cookies.decode(ck.Value)
	if !ok {
		return ""
	}
	return hashSessionID(id)
}

// foreignRequest reports whether the browser says another site started r,
// or that r is not a navigation: an image, script or fetch of the sign-out
// link, even from the proxied application's own pages (same origin), is
// not the user asking to sign out.
func (g *Gateway) foreignRequest(r *http.Request) bool {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && mode != "navigate" {
		return true
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "":
		// An older browser or a plain client: its Origin or Referer, if any.
	default: // cross-site, same-site (another origin of the same site)
		return true
	}
	if o := r.Header.Get("Origin"); o != "" {
		return !g.ownOrigin(r, o)
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		return !g.ownOrigin(r, ref)
	}
	return false
}

// ownOrigin reports whether raw (an Origin or a Referer) is teamgate's own
// origin: the request's host, as http.CrossOriginProtection compares it, or
// the public URL's origin. "null" and unparsable values are foreign.
func (g *Gateway) ownOrigin(r *http.Request, raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Host == r.Host {
		return true
	}
	return browserOrigin(u) == originOf(g.publicURL)
}

// originOf is rawURL's origin as a browser writes it ("" if it has none).
func originOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return browserOrigin(u)
}
