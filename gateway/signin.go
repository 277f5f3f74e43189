package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"github.com/teamgate/teamgate/web"
)

// signInHref is the sign-in URL that returns to rd afterwards.
func signInHref(rd string) string {
	return "/oauth2/start?rd=" + url.QueryEscape(safeRedirect(rd))
}

func signInLink(href string) *web.Link { return &web.Link{Href: href, Label: "Sign in again"} }

// errSignInExpired answers every callback that does not belong to a live
// sign-in attempt: no or a forged state, a reused or expired code, a nonce
// mismatch. The user cannot tell these apart and the fix is the same.
func errSignInExpired(rd string, cause error) *statusError {
	return &statusError{Status: http.StatusBadRequest, Title: "Sign-in link expired or reused",
		Message: "This sign-in link has expired or was already used.",
		Next:    "Start the sign-in again.",
		Action:  signInLink(signInHref(rd)), Cause: cause}
}

func errEntraUnreachable(rd string, cause error) *statusError {
	return &statusError{Status: http.StatusServiceUnavailable, Title: "Microsoft Entra is unavailable",
		Message: "teamgate cannot reach Microsoft Entra to sign you in.",
		Next:    "Wait a moment and try again.",
		Action:  signInLink(signInHref(rd)), Cause: cause}
}

func errEntraMisconfigured(cause error) *statusError {
	return &statusError{Status: http.StatusBadGateway, Title: "Sign-in failed",
		Message: "Microsoft Entra's answer could not be accepted, so teamgate did not sign you in.",
		Next:    "Contact your administrator and mention the request id.", Cause: cause}
}

// handleStart sends the browser to Entra's authorize endpoint with PKCE
// (S256, always: Entra supports it without advertising it), a state and a
// nonce, remembered in a short-lived encrypted cookie.
func (g *Gateway) handleStart(c *gin.Context) {
	w, r := c.Writer, c.Request
	rd := safeRedirect(r.URL.Query().Get("rd"))
	client, err := g.discover(r.Context())
	if err != nil {
		g.writeError(w, r, errEntraUnreachable(rd, err))
		return
	}
	verifier := oauth2.GenerateVerifier()
	st, err := g.states.begin(w, rd, verifier)
	if err != nil {
		g.writeError(w, r, &statusError{Status: http.StatusInternalServerError, Title: "Sign-in failed",
			Message: "teamgate could not start the sign-in.", Cause: err})
		return
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(verifier)}
	if hint := r.URL.Query().Get("login_hint"); isSafeLoginHint(hint) {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	redirect(w, client.oauth2.AuthCodeURL(st.State, opts...), http.StatusFound)
}

// isSafeLoginHint accepts a plausible account name to pre-fill Entra's form.
func isSafeLoginHint(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// idClaims are the ID-token claims teamgate uses. Users are identified by
// oid (stable in the tenant), never by email or name.
type idClaims struct {
	OID               string `json:"oid"`
	TID               string `json:"tid"`
	Email             string `json:"email"`
	PreferredUsername string `json:"preferred_username"`
	Name              string `json:"name"`
}

// handleCallback completes a sign-in. Every failure ends on an error page
// and creates no session; only after the reconcile succeeded is the session
// created.
func (g *Gateway) handleCallback(c *gin.Context) {
	w, r := c.Writer, c.Request
	q := r.URL.Query()
	st, stOK := g.states.take(w, r, q.Get("state"))
	rd := "/"
	if stOK {
		rd = safeRedirect(st.RD)
	}
	if code := q.Get("error"); code != "" {
		g.writeError(w, r, entraError(code, q.Get("error_description"), signInHref(rd)))
		return
	}
	if !stOK {
		g.writeError(w, r, errSignInExpired(rd, errors.New("missing, forged, reused or expired state")))
		return
	}
	code := q.Get("code")
	if code == "" {
		g.writeError(w, r, errSignInExpired(rd, errors.New("callback without code")))
		return
	}
	client, err := g.discover(r.Context())
	if err != nil {
		g.writeError(w, r, errEntraUnreachable(rd, err))
		return
	}
	id, serr := g.redeem(r.Context(), client, code, st)
	if serr != nil {
		g.writeError(w, r, serr)
		return
	}
	info := requestInfoFrom(r.Context())
	info.userID = id.UserID

	if err := g.deps.Syncer.Sync(r.Context(), id); err != nil {
		g.writeError(w, r, syncFailure(err, rd))
		return
	}
	if err := g.sessions.create(r.Context(), w, r, id.UserID, g.cfg.Session.Lifetime.Std()); err != nil {
		g.writeError(w, r, errSessionStoreDown(err))
		return
	}
	// The reconcile may have changed this user's teams: other sessions of
	// theirs on this replica must reload them.
	g.InvalidateUser(id.UserID)
	g.log.Info("signed in", "user_id", id.UserID, "request_id", info.id)
	setPageHeaders(w.Header())
	redirect(w, rd, http.StatusFound)
}

// redeem exchanges the code (with the PKCE verifier) and verifies the ID
// token: signature, issuer, audience and expiry by go-oidc, the nonce here.
func (g *Gateway) redeem(ctx context.Context, client *oidcClient, code string, st authState) (Identity, *statusError) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, g.httpClient)
	token, err := client.oauth2.Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return Identity{}, exchangeFailure(err, st.RD)
	}
	raw, _ := token.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, errEntraMisconfigured(errors.New("token response has no id_token"))
	}
	idt, err := client.verifier.Verify(oidc.ClientContext(ctx, g.httpClient), raw)
	if err != nil {
		return Identity{}, errEntraMisconfigured(fmt.Errorf("verify id token: %w", err))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return Identity{}, errSignInExpired(st.RD, errors.New("id token nonce does not match the sign-in attempt"))
	}
	var claims idClaims
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, errEntraMisconfigured(fmt.Errorf("decode id token claims: %w", err))
	}
	if claims.OID == "" {
		return Identity{}, errEntraMisconfigured(errors.New("id token has no oid claim"))
	}
	return Identity{
		UserID: claims.OID, TenantID: claims.TID, Email: claims.Email,
		UPN: claims.PreferredUsername, DisplayName: claims.Name,
	}, nil
}

// exchangeFailure classifies a failed code redemption: a rejected grant is
// the user's stale or replayed link (400); Entra failing is 503; Entra
// rejecting teamgate's credentials is a configuration problem (502).
func exchangeFailure(err error, rd string) *statusError {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch {
		case re.ErrorCode == "invalid_grant":
			return errSignInExpired(rd, fmt.Errorf("redeem code: %s", re.ErrorCode))
		case re.Response != nil && re.Response.StatusCode >= 500, re.ErrorCode == "temporarily_unavailable":
			return errEntraUnreachable(rd, fmt.Errorf("redeem code: status %d %s", statusOf(re), re.ErrorCode))
		default:
			return errEntraMisconfigured(fmt.Errorf("redeem code: status %d %s", statusOf(re), re.ErrorCode))
		}
	}
	return errEntraUnreachable(rd, fmt.Errorf("redeem code: %w", err))
}

func statusOf(re *oauth2.RetrieveError) int {
	if re.Response == nil {
		return 0
	}
	return re.Response.StatusCode
}

// syncFailure turns a failed reconcile into the user's answer.
func syncFailure(err error, rd string) *statusError {
	var se *SyncError
	if !errors.As(err, &se) {
		se = &SyncError{Kind: SyncInternal, Err: err}
	}
	switch se.Kind {
	case SyncUnavailable:
		return &statusError{Status: http.StatusServiceUnavailable, Title: "Microsoft Entra is unavailable",
			Message: "teamgate could not read your groups from Microsoft Entra/Graph, so it did not sign you in.",
			Next:    "Wait a moment and try again.", Action: signInLink(signInHref(rd)), Cause: err}
	case SyncPermission:
		return &statusError{Status: http.StatusBadGateway, Title: "teamgate lacks a permission",
			Message: "The application lacks a permission in Microsoft Entra, so teamgate cannot read your groups.",
			Next:    "Contact your administrator and mention the request id.",
			Cause:   fmt.Errorf("missing application permission %q: %w", se.Permission, err)}
	default:
		return &statusError{Status: http.StatusServiceUnavailable, Title: "teamgate is temporarily unavailable",
			Message: "teamgate could not record your sign-in.",
			Next:    "Wait a moment and try again. If this persists, contact your administrator.",
			Action:  signInLink(signInHref(rd)), Cause: err}
	}
}

// handleSignOut ends the session server-side, forgets it on this replica at
// once, clears the cookie and ends the Entra session too. GET is accepted so
// that a plain link can sign out; one from another site is confirmed first
// (signout_guard.go).
func (g *Gateway) handleSignOut(c *gin.Context) {
	if !g.signOutAllowed(c) {
		return
	}
	w, r := c.Writer, c.Request
	if ck, err := r.Cookie(g.cfg.Session.CookieName); err == nil && ck.Value != "" {
		if id, ok := g.sessions.cookies.decode(ck.Value); ok {
			sid := hashSessionID(id)
			err := g.deps.Sessions.DeleteSession(r.Context(), sid)
			if err != nil && !errors.Is(err, ErrNoSession) {
				// Keep the cookie: clearing it would leave a live session
				// in the database that the user could no longer end.
				g.writeError(w, r, &statusError{Status: http.StatusServiceUnavailable, Title: "Sign-out failed",
					Message: "teamgate could not end your session because its database is unavailable.",
					Next:    "Wait a moment and try again.",
					Action:  &web.Link{Href: "/oauth2/sign_out", Label: "Try again"}, Cause: err})
				return
			}
			g.sessions.revoke(sid)
		}
		g.sessions.cache.deleteKey(ck.Value)
	}
	g.sessions.cookies.expire(w)
	setPageHeaders(w.Header())
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	redirect(w, g.signOutTarget(), status)
}

// signOutTarget is Entra's end_session_endpoint returning to the signed-out
// page, or the page itself when discovery has none (or is not loaded).
func (g *Gateway) signOutTarget() string {
	local := g.publicURL + "/teamgate/signed-out"
	client := g.oidc.Load()
	if client == nil || client.endSession == "" {
		return "/teamgate/signed-out"
	}
	u, err := url.Parse(client.endSession)
	if err != nil {
		return "/teamgate/signed-out"
	}
	q := u.Query()
	q.Set("post_logout_redirect_uri", local)
	u.RawQuery = q.Encode()
	return u.String()
}

func (g *Gateway) handleSignedOut(c *gin.Context) {
	w := c.Writer
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if c.Request.Method == http.MethodHead {
		return
	}
	if err := web.RenderSignedOut(w, web.SignedOutPage{SignInHref: signInHref("/"),
		Chrome: web.Chrome{RequestID: requestInfoFrom(c.Request.Context()).id}}); err != nil {
		g.log.Warn("render signed-out page", "error", err)
	}
}

// redirect sets Location directly: http.Redirect would rewrite relative
// targets and add an HTML body.
func redirect(w http.ResponseWriter, location string, status int) {
	w.Header().Set("Location", location)
	w.WriteHeader(status)
}
