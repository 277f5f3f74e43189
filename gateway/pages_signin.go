package gateway

import (
	"io"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/teamgate/teamgate/web"
)

// The optional sign-in landing page (server.sign_in_page). By default a
// signed-out browser goes straight to Entra; with the page on it first sees
// what it is signing in to, or why it has to sign in again.

const signInPagePath = "/teamgate/sign-in"

// signInTarget is where a signed-out browser asking for rd is sent.
func (g *Gateway) signInTarget(rd string, r *http.Request) string {
	if !g.cfg.Server.SignInPage {
		return signInHref(rd)
	}
	q := url.Values{"rd": {safeRedirect(rd)}}
	if ck, err := r.Cookie(g.cfg.Session.CookieName); err == nil && ck.Value != "" {
		// The browser still holds a session cookie that no longer works.
		q.Set("expired", "1")
	}
	return signInPagePath + "?" + q.Encode()
}

func (g *Gateway) handleSignInPage(c *gin.Context) {
	w, r := c.Writer, c.Request
	rd := safeRedirect(c.Query("rd"))
	if !g.cfg.Server.SignInPage {
		redirect(w, signInHref(rd), http.StatusFound)
		return
	}
	entry, err := g.sessions.resolve(r)
	if err != nil {
		g.writeError(w, r, errSession(err))
		return
	}
	if entry != nil { // already signed in: nothing to do here
		redirect(w, rd, http.StatusFound)
		return
	}
	page := web.SignInPage{
		Chrome:     web.Chrome{RequestID: requestInfoFrom(r.Context()).id},
		SignInHref: signInHref(rd),
		Expired:    c.Query("expired") == "1",
	}
	g.renderPage(w, r, http.StatusOK, func(out io.Writer) error { return web.RenderSignIn(out, page) })
}
