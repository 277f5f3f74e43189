package gateway

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/teamgate/teamgate/web"
)

// The admin pages under /teamgate/admin: teams (searchable, paginated for
// tenants with thousands of groups), one team's members with the forms to
// add and remove manual members, users, and the sync log with filters.

const (
	adminPageSize = 50
	maxSearchLen  = 200
)

// routePages registers teamgate's own pages.
func (g *Gateway) routePages(e *gin.Engine) {
	e.GET(signInPagePath, g.handleSignInPage)
	e.HEAD(signInPagePath, g.handleSignInPage)
	e.GET("/teamgate/me", g.handleMe)
	e.HEAD("/teamgate/me", g.handleMe)
	e.POST("/teamgate/me/default-team", g.handleSetDefaultTeam)

	admin := e.Group("/teamgate/admin")
	admin.GET("", g.handleAdminTeams)
	admin.GET("/team", g.handleAdminTeam)
	admin.GET("/users", g.handleAdminUsers)
	admin.GET("/events", g.handleAdminEvents)
	admin.POST("/members/add", g.handleAddMember)
	admin.POST("/members/remove", g.handleRemoveMember)
}

func errAdminsOnly() *statusError {
	return &statusError{Status: http.StatusForbidden, Title: "Administrators only",
		Message: "The admin pages are for teamgate administrators, and your account is not one.",
		Next: "If you need access, ask your administrator to add you to a teamgate administrators group in Microsoft Entra, " +
			"then sign in again.",
		Action: &web.Link{Href: "/teamgate/me", Label: "Back to my teams"}}
}

// adminUser resolves the signed-in admin of a request, or answers (sign-in
// redirect, expired session, 403) and returns nil.
func (g *Gateway) adminUser(c *gin.Context, back string) *principalEntry {
	entry := g.pageUser(c, back)
	if entry == nil {
		return nil
	}
	if !g.isAdmin(&entry.principal) {
		g.writeError(c.Writer, c.Request, errAdminsOnly())
		return nil
	}
	return entry
}

// maxPage bounds ?page= so that the offset cannot overflow.
const maxPage = 1 << 20

// pageNumber reads ?page=, 1-based; anything else is page 1.
func pageNumber(c *gin.Context) int {
	n, err := strconv.Atoi(c.Query("page"))
	if err != nil || n < 1 {
		return 1
	}
	return min(n, maxPage)
}

// fetchPage reads the requested page of a list; a page past the end shows
// the last page instead (one more query, only in that case).
func fetchPage[T any](c *gin.Context, fetch func(offset int) ([]T, int, error)) (items []T, total, page int, err error) {
	page = pageNumber(c)
	items, total, err = fetch((page - 1) * adminPageSize)
	if err == nil && len(items) == 0 && page > 1 {
		if last := max(1, (total+adminPageSize-1)/adminPageSize); last < page {
			page = last
			items, total, err = fetch((page - 1) * adminPageSize)
		}
	}
	return items, total, page, err
}

// search reads a bounded, trimmed search term.
func search(c *gin.Context, key string) string {
	s := strings.TrimSpace(c.Query(key))
	if len(s) > maxSearchLen {
		s = strings.ToValidUTF8(s[:maxSearchLen], "")
	}
	return s
}

// pager describes page (1-based) of total items, shown n at a time; the
// links keep the other query parameters.
func pager(noun, one, path string, q url.Values, page, total, shown int) web.Pager {
	p := web.Pager{Noun: noun, One: one, Total: total, Page: page, Pages: max(1, (total+adminPageSize-1)/adminPageSize)}
	if shown > 0 {
		p.From = (page-1)*adminPageSize + 1
		p.To = p.From + shown - 1
	}
	link := func(n int) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("page", strconv.Itoa(n))
		return pageURL(path, v)
	}
	if page > 1 {
		p.Prev = link(page - 1)
	}
	if page < p.Pages {
		p.Next = link(page + 1)
	}
	return p
}

func teamRow(t PageTeam) web.TeamRow {
	return web.TeamRow{ID: t.ID, Alias: t.Alias, Assigned: t.Assigned, Members: t.Members,
		MaxBudget: t.MaxBudget, BudgetDuration: t.BudgetDuration, Models: t.Models,
		TPMLimit: t.TPMLimit, RPMLimit: t.RPMLimit, UpdatedAt: t.UpdatedAt,
		Href: pageURL("/teamgate/admin/team", url.Values{"id": {t.ID}})}
}

func (g *Gateway) handleAdminTeams(c *gin.Context) {
	entry := g.adminUser(c, "/teamgate/admin")
	if entry == nil {
		return
	}
	w, r := c.Writer, c.Request
	query := search(c, "q")
	teams, total, page, err := fetchPage(c, func(offset int) ([]PageTeam, int, error) {
		return g.deps.Pages.Teams(r.Context(), PageQuery{Search: query, Limit: adminPageSize, Offset: offset})
	})
	if err != nil {
		g.writeError(w, r, errPageData(err))
		return
	}
	q := url.Values{}
	if query != "" {
		q.Set("q", query)
	}
	out := web.AdminTeamsPage{Chrome: g.chrome(r, entry, "admin"), Query: query,
		Pager: pager("teams", "team", "/teamgate/admin", q, page, total, len(teams)), Outbox: g.backlogPanel(r)}
	for _, t := range teams {
		out.Teams = append(out.Teams, teamRow(t))
	}
	g.renderPage(w, r, http.StatusOK, func(o io.Writer) error { return web.RenderAdminTeams(o, out) })
}

// backlogPanel summarises LiteLLM provisioning; nil when it is off (no
// Deps.Outbox). The counts come from Deps.Outbox when it also implements
// BacklogSource, else from its listing. A failure to read them shows in the
// panel rather than failing the page.
func (g *Gateway) backlogPanel(r *http.Request) *web.OutboxPanel {
	if g.deps.Outbox == nil {
		return nil
	}
	b, err := g.backlog(r)
	if err != nil {
		g.log.Warn("read provisioning backlog", "error", err, "request_id", requestInfoFrom(r.Context()).id)
		return &web.OutboxPanel{Note: "The backlog could not be read just now; reload the page to try again."}
	}
	p := &web.OutboxPanel{Stats: []web.Stat{
		{Label: "Waiting to be sent to LiteLLM", Value: strconv.Itoa(b.Pending)},
		{Label: "Failed, waiting for an operator", Value: strconv.Itoa(b.Parked), Bad: b.Parked > 0},
	}}
	if b.Capped {
		p.Stats[0].Value += "+"
		p.Stats[1].Value += "+"
	}
	switch {
	case b.Pending == 0 && b.Parked == 0:
		p.Note = "LiteLLM is up to date with teamgate's teams."
	case b.Oldest != nil:
		p.Note = "The oldest waiting operation was queued at " + b.Oldest.UTC().Format("2006-01-02 15:04:05 UTC") + "."
	}
	return p
}

// backlogListLimit bounds the listing used when the outbox cannot count.
const backlogListLimit = 1000

type backlogCounts struct {
	Backlog
	Capped bool // counted by listing, and a list was full
}

func (g *Gateway) backlog(r *http.Request) (backlogCounts, error) {
	if src, ok := g.deps.Outbox.(BacklogSource); ok {
		b, err := src.Backlog(r.Context())
		return backlogCounts{Backlog: b}, err
	}
	var out backlogCounts
	pending, err := g.deps.Outbox.ListOutbox(r.Context(), "pending", backlogListLimit)
	if err != nil {
		return out, err
	}
	parked, err := g.deps.Outbox.ListOutbox(r.Context(), "parked", backlogListLimit)
	if err != nil {
		return out, err
	}
	out.Pending, out.Parked = len(pending), len(parked)
	out.Capped = len(pending) == backlogListLimit || len(parked) == backlogListLimit
	if n := len(pending); n > 0 && !out.Capped {
		oldest := pending[n-1].CreatedAt // newest first
		out.Oldest = &oldest
	}
	return out, nil
}

func (g *Gateway) handleAdminUsers(c *gin.Context) {
	entry := g.adminUser(c, "/teamgate/admin/users")
	if entry == nil {
		return
	}
	w, r := c.Writer, c.Request
	query := search(c, "q")
	users, total, page, err := fetchPage(c, func(offset int) ([]PageUser, int, error) {
		return g.deps.Pages.Users(r.Context(), PageQuery{Search: query, Limit: adminPageSize, Offset: offset})
	})
	if err != nil {
		g.writeError(w, r, errPageData(err))
		return
	}
	q := url.Values{}
	if query != "" {
		q.Set("q", query)
	}
	out := web.AdminUsersPage{Chrome: g.chrome(r, entry, "admin"), Query: query,
		Pager: pager("users", "user", "/teamgate/admin/users", q, page, total, len(users))}
	for _, u := range users {
		p := Principal{Role: u.Role, InAdminGroup: u.InAdminGroup}
		out.Users = append(out.Users, web.UserRow{UserID: u.UserID, Email: u.Email, DisplayName: u.DisplayName,
			Role: u.Role, InAdminGroup: u.InAdminGroup && len(g.cfg.Admin.GroupIDs) > 0, IsAdmin: g.isAdmin(&p),
			Teams: u.Teams, LastLoginAt: u.LastLoginAt,
			EventsHref: pageURL("/teamgate/admin/events", url.Values{"user_id": {u.UserID}})})
	}
	g.renderPage(w, r, http.StatusOK, func(o io.Writer) error { return web.RenderAdminUsers(o, out) })
}

var eventOutcomes = []web.Option{
	{Value: "", Label: "All"},
	{Value: "ok", Label: "Succeeded"},
	{Value: "error", Label: "Failed"},
	{Value: "admin", Label: "Admin changes"},
}

var eventKinds = []web.Option{
	{Value: "", Label: "All"},
	{Value: "signin", Label: "Sign-ins"},
	{Value: "background", Label: "Background sync"},
	{Value: "revalidate", Label: "Re-validations"},
	{Value: "admin", Label: "Admin changes"},
}

// selectOption marks the chosen option; an unknown choice selects the
// first (filtering nothing rather than everything) and returns "".
func selectOption(choices []web.Option, chosen string) ([]web.Option, string) {
	out := make([]web.Option, len(choices))
	known := false
	for i, o := range choices {
		o.Selected = o.Value == chosen
		known = known || o.Selected
		out[i] = o
	}
	if !known {
		out[0].Selected = true
		return out, ""
	}
	return out, chosen
}

func (g *Gateway) handleAdminEvents(c *gin.Context) {
	entry := g.adminUser(c, "/teamgate/admin/events")
	if entry == nil {
		return
	}
	w, r := c.Writer, c.Request
	userID := search(c, "user_id")
	options, outcome := selectOption(eventOutcomes, c.Query("outcome"))
	kinds, kind := selectOption(eventKinds, c.Query("kind"))
	events, total, page, err := fetchPage(c, func(offset int) ([]PageEvent, int, error) {
		return g.deps.Pages.SyncEvents(r.Context(), EventPageQuery{UserID: userID, Outcome: outcome, Kind: kind, Limit: adminPageSize, Offset: offset})
	})
	if err != nil {
		g.writeError(w, r, errPageData(err))
		return
	}
	shown, err := g.webEvents(r, events)
	if err != nil {
		g.writeError(w, r, errPageData(err))
		return
	}
	q := url.Values{}
	if userID != "" {
		q.Set("user_id", userID)
	}
	if outcome != "" {
		q.Set("outcome", outcome)
	}
	if kind != "" {
		q.Set("kind", kind)
	}
	out := web.AdminEventsPage{Chrome: g.chrome(r, entry, "admin"), UserID: userID, Outcome: outcome,
		Outcomes: options, Kind: kind, Kinds: kinds, Events: shown, Pager: pager("events", "event", "/teamgate/admin/events", q, page, total, len(events))}
	g.renderPage(w, r, http.StatusOK, func(o io.Writer) error { return web.RenderAdminEvents(o, out) })
}
