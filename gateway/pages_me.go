package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/teamgate/teamgate/web"
)

// This file serves /teamgate/me and what every page of a signed-in user
// shares: resolving the session, the navigation, rendering.

// maxFormBytes bounds the forms teamgate parses; its forms are a few fields.
const maxFormBytes = 16 << 10

// errPagesOff answers the pages when no PageSource is wired (tests and
// embeddings that only proxy).
func errPagesOff() *statusError {
	return &statusError{Status: http.StatusNotFound, Title: "Page not available",
		Message: "This teamgate installation does not serve its account pages."}
}

// errSessionExpired answers a form sent after the session ended: a POST
// cannot be replayed through a sign-in redirect.
func errSessionExpired(back string) *statusError {
	return &statusError{Status: http.StatusUnauthorized, Title: "Your session has expired",
		Message: "You were signed out (your session expired or was ended), so teamgate did not apply this change.",
		Next:    "Sign in again, then make the change again.",
		Action:  signInLink(signInHref(back))}
}

// pageUser resolves the signed-in user of a page request. When there is none
// it answers (a redirect to sign in for a page load, or the expired-session
// page for a form) and returns nil.
func (g *Gateway) pageUser(c *gin.Context, back string) *principalEntry {
	w, r := c.Writer, c.Request
	if g.deps.Pages == nil {
		g.writeError(w, r, errPagesOff())
		return nil
	}
	entry, err := g.sessions.resolve(r)
	if err != nil {
		g.writeError(w, r, errSession(err))
		return nil
	}
	if entry == nil {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			redirect(w, g.signInTarget(back, r), http.StatusFound)
		} else {
			g.writeError(w, r, errSessionExpired(back))
		}
		return nil
	}
	requestInfoFrom(r.Context()).userID = entry.principal.UserID
	return entry
}

// checkForm bounds and parses a POSTed form and runs the CSRF checks.
func (g *Gateway) checkForm(c *gin.Context, entry *principalEntry, back string) bool {
	r := c.Request
	r.Body = http.MaxBytesReader(c.Writer, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		g.writeError(c.Writer, r, &statusError{Status: http.StatusBadRequest, Title: "Form not accepted",
			Message: "teamgate could not read this form.", Next: "Go back and try again.", Cause: err})
		return false
	}
	if err := g.csrf.check(r, entry.sessionID); err != nil {
		g.writeError(c.Writer, r, errFormExpired(back, err))
		return false
	}
	return true
}

// chrome is the frame of a signed-in user's page.
func (g *Gateway) chrome(r *http.Request, entry *principalEntry, current string) web.Chrome {
	p := &entry.principal
	name := p.DisplayName
	if name == "" {
		name = p.Email
	}
	if name == "" {
		name = p.UserID
	}
	return web.Chrome{
		RequestID: requestInfoFrom(r.Context()).id,
		Nav:       &web.Nav{UserName: name, IsAdmin: g.isAdmin(p), Current: current},
	}
}

// renderPage renders into a buffer first, so that a template failure
// becomes a clean error page rather than half a page.
func (g *Gateway) renderPage(w http.ResponseWriter, r *http.Request, status int, render func(io.Writer) error) {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		g.writeError(w, r, &statusError{Status: http.StatusInternalServerError, Title: "Something went wrong",
			Message: "teamgate could not show this page.", Next: "Try again. If this persists, contact your administrator.", Cause: err})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// errPageData answers a PageSource failure.
func errPageData(err error) *statusError {
	return &statusError{Status: http.StatusServiceUnavailable, Title: "teamgate is temporarily unavailable",
		Message: "teamgate could not read this page's data because its database is unavailable.",
		Next:    "Wait a moment and reload the page. If this persists, contact your administrator.", Cause: err}
}

// defaultTeam is the team a request acts for when it names none: the
// user's choice if it is still one of their teams, else the first by alias.
func defaultTeam(p *Principal) string {
	if p.DefaultTeamID != "" {
		for _, t := range p.Teams {
			if t.ID == p.DefaultTeamID {
				return t.ID
			}
		}
	}
	if len(p.Teams) == 0 {
		return ""
	}
	return p.Teams[0].ID
}

func (g *Gateway) handleMe(c *gin.Context) {
	entry := g.pageUser(c, "/teamgate/me")
	if entry == nil {
		return
	}
	var notice *web.Notice
	if c.Query("saved") == "1" {
		notice = &web.Notice{} // filled in once the acting team is known
	}
	g.showMe(c, entry, http.StatusOK, notice)
}

// showMe renders /teamgate/me. A notice with empty text confirms the saved
// default team.
func (g *Gateway) showMe(c *gin.Context, entry *principalEntry, status int, notice *web.Notice) {
	w, r := c.Writer, c.Request
	p := &entry.principal
	teams, err := g.deps.Pages.MyTeams(r.Context(), p.UserID)
	if err != nil {
		g.writeError(w, r, errPageData(err))
		return
	}
	last, ok, err := g.deps.Pages.LastSync(r.Context(), p.UserID)
	if err != nil {
		g.writeError(w, r, errPageData(err))
		return
	}
	page := web.MePage{
		Chrome: g.chrome(r, entry, "me"),
		Name:   p.DisplayName, Email: p.Email, UPN: p.UPN, UserID: p.UserID, Role: p.Role,
		AdminVia:    adminVia(g, p),
		TeamHeader:  g.cfg.Upstream.Headers.TeamID,
		CSRFToken:   g.csrf.token(entry.sessionID),
		SignOutHref: "/oauth2/sign_out",
		Notice:      notice,
	}
	// The acting team follows the same rule as the proxy, applied to the
	// teams just read (the principal's copy may be a few seconds older).
	refs := make([]TeamRef, len(teams))
	for i, t := range teams {
		refs[i] = TeamRef{ID: t.ID, Alias: t.Alias}
	}
	acting := defaultTeam(&Principal{Teams: refs, DefaultTeamID: p.DefaultTeamID})
	for _, t := range teams {
		mt := web.MyTeam{ID: t.ID, Alias: t.Alias, MaxBudget: t.MaxBudget, BudgetDuration: t.BudgetDuration,
			Models: t.Models, TPMLimit: t.TPMLimit, RPMLimit: t.RPMLimit, Acting: t.ID == acting}
		page.Teams = append(page.Teams, mt)
		if mt.Acting {
			page.Acting = &page.Teams[len(page.Teams)-1]
		}
	}
	page.DefaultChosen = acting != "" && acting == p.DefaultTeamID
	if notice != nil && notice.Text == "" {
		if page.Acting != nil && page.DefaultChosen {
			notice.Text = "Saved. Your requests now act for " + page.Acting.Alias + " unless they name another team."
		} else {
			page.Notice = nil // a stale or forged confirmation: say nothing
		}
	}
	if ok {
		ev, err := g.webEvents(r, []PageEvent{last})
		if err != nil {
			g.writeError(w, r, errPageData(err))
			return
		}
		page.LastSync = &ev[0]
	}
	g.renderPage(w, r, status, func(out io.Writer) error { return web.RenderMe(out, page) })
}

func adminVia(g *Gateway, p *Principal) string {
	switch {
	case p.Role == "proxy_admin":
		return "role proxy_admin"
	case g.isAdmin(p):
		return "member of an administrators group in Microsoft Entra"
	}
	return ""
}

// handleSetDefaultTeam saves the user's default team and reloads their
// principal on this replica at once, so the next proxied request carries
// the new X-LiteLLM-Team-Id. Other replicas follow at once when the store
// notifies them (see session_notify.go), else within session.cache_ttl.
func (g *Gateway) handleSetDefaultTeam(c *gin.Context) {
	entry := g.pageUser(c, "/teamgate/me")
	if entry == nil || !g.checkForm(c, entry, "/teamgate/me") {
		return
	}
	r := c.Request
	userID := entry.principal.UserID
	teamID := r.PostFormValue("team_id")
	err := g.deps.Pages.SetDefaultTeam(r.Context(), userID, teamID)
	switch {
	case errors.Is(err, ErrNotFound):
		g.showMe(c, entry, http.StatusBadRequest, &web.Notice{Bad: true,
			Text: "That team is not one of your teams (any more), so your default team did not change."})
		return
	case err != nil:
		g.writeError(c.Writer, r, errPageData(err))
		return
	}
	g.InvalidateUser(userID)
	g.log.Info("default team chosen", "user_id", userID, "team_id", teamID, "request_id", requestInfoFrom(r.Context()).id)
	redirect(c.Writer, "/teamgate/me?saved=1", http.StatusSeeOther)
}

// webEvents turns sync log entries into what the pages show, naming teams
// by alias (one lookup for all of them).
func (g *Gateway) webEvents(r *http.Request, events []PageEvent) ([]web.SyncEvent, error) {
	var ids []string
	for _, e := range events {
		for _, l := range [][]string{e.TeamsCreated, e.TeamsRenamed, e.TeamsUnassigned, e.MembershipsAdded, e.MembershipsRemoved} {
			ids = append(ids, l...)
		}
	}
	aliases, err := g.deps.Pages.TeamAliases(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	names := func(ids []string) []web.TeamName {
		out := make([]web.TeamName, len(ids))
		for i, id := range ids {
			out[i] = web.TeamName{ID: id, Alias: aliases[id]}
		}
		return out
	}
	out := make([]web.SyncEvent, len(events))
	for i, e := range events {
		user := e.UserEmail
		if user == "" {
			user = e.UserName
		}
		out[i] = web.SyncEvent{
			ID: e.ID, At: e.At, UserID: e.UserID, User: user, Outcome: e.Outcome, Error: e.Error,
			Kind: e.Kind, Detail: eventDetail(e.Detail),
			Actor: e.Actor, Duration: e.Duration,
			TeamsCreated: names(e.TeamsCreated), TeamsRenamed: names(e.TeamsRenamed),
			TeamsUnassigned: names(e.TeamsUnassigned), Joined: names(e.MembershipsAdded), Left: names(e.MembershipsRemoved),
		}
	}
	return out, nil
}

// eventDetail spells out the reasons a re-check ends sessions; other
// details (a background run's counts) are already words.
func eventDetail(d string) string {
	switch d {
	case SessionEndedDisabled:
		return "Account disabled in Microsoft Entra ID: sessions ended"
	case SessionEndedDeleted:
		return "Account deleted from Microsoft Entra ID: sessions ended"
	case SessionEndedUnassigned:
		return "No longer assigned to the application: sessions ended"
	}
	return d
}

// pageURL builds a page's href with its query.
func pageURL(path string, q url.Values) string {
	if enc := q.Encode(); enc != "" {
		return path + "?" + enc
	}
	return path
}
