package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/teamgate/teamgate/web"
)

// A team's admin page: its members, and the forms that add a manual member
// or remove one. Changes are recorded in the sync log as done by the admin
// and reach the member's sessions on this replica at once.

func (g *Gateway) handleAdminTeam(c *gin.Context) {
	back := pageURL("/teamgate/admin/team", url.Values{"id": {c.Query("id")}})
	entry := g.adminUser(c, back)
	if entry == nil {
		return
	}
	var notice *web.Notice
	switch c.Query("done") {
	case "added", "removed":
		notice = &web.Notice{Text: c.Query("done")} // checked against the members below
	}
	g.showTeam(c, entry, c.Query("id"), http.StatusOK, notice, c.Query("user_id"))
}

// showTeam renders a team's page. A notice whose text is "added" or
// "removed" confirms that change for userID, but only if the members agree:
// the confirmation comes from the query string, so it must not be able to
// claim what did not happen.
func (g *Gateway) showTeam(c *gin.Context, entry *principalEntry, teamID string, status int, notice *web.Notice, userID string) {
	w, r := c.Writer, c.Request
	team, members, err := g.deps.Pages.Team(r.Context(), teamID)
	if errors.Is(err, ErrNotFound) {
		g.writeError(w, r, &statusError{Status: http.StatusNotFound, Title: "No such team",
			Message: "There is no team with this id.", Next: "Go back to the team list and search for it.",
			Action: &web.Link{Href: "/teamgate/admin", Label: "All teams"}})
		return
	}
	if err != nil {
		g.writeError(w, r, errPageData(err))
		return
	}
	out := web.AdminTeamPage{Chrome: g.chrome(r, entry, "admin"), Team: teamRow(team),
		CSRFToken: g.csrf.token(entry.sessionID), Notice: notice,
		EventsHref: pageURL("/teamgate/admin/events", url.Values{"outcome": {"admin"}})}
	var member *PageMember
	for i, m := range members {
		out.Members = append(out.Members, web.MemberRow{UserID: m.UserID, Email: m.Email, DisplayName: m.DisplayName,
			Role: m.Role, Source: m.Source, AddedAt: m.AddedAt})
		if m.UserID == userID {
			member = &members[i]
		}
	}
	if notice != nil && !notice.Bad {
		switch {
		case notice.Text == "added" && member != nil && member.Source == "manual":
			notice.Text = "Added " + memberLabel(member) + " as a manual member."
		case notice.Text == "removed" && member == nil && userID != "":
			notice.Text = "Removed " + g.userLabel(r, userID) + " from the team."
		default:
			out.Notice = nil
		}
	}
	g.renderPage(w, r, status, func(o io.Writer) error { return web.RenderAdminTeam(o, out) })
}

func memberLabel(m *PageMember) string {
	switch {
	case m.Email != "":
		return m.Email
	case m.DisplayName != "":
		return m.DisplayName
	}
	return m.UserID
}

// userLabel names a user who is no longer among a team's members by their
// email or name, as memberLabel does; their id when the lookup fails.
func (g *Gateway) userLabel(r *http.Request, userID string) string {
	if g.deps.Directory == nil {
		return userID
	}
	u, err := g.deps.Directory.User(r.Context(), userID)
	if err != nil {
		return userID
	}
	return memberLabel(&PageMember{UserID: u.UserID, Email: u.UserEmail, DisplayName: u.DisplayName})
}

// actor names an admin in the sync log.
func actor(p *Principal) string {
	if p.Email != "" {
		return p.Email
	}
	return p.UserID
}

func (g *Gateway) handleAddMember(c *gin.Context) {
	g.changeMember(c, "add")
}

func (g *Gateway) handleRemoveMember(c *gin.Context) {
	g.changeMember(c, "remove")
}

// changeMember applies an admin's add or remove form, then redirects to the
// team's page (post/redirect/get), or shows that page with the problem.
func (g *Gateway) changeMember(c *gin.Context, op string) {
	r := c.Request
	entry := g.adminUser(c, "/teamgate/admin")
	if entry == nil {
		return
	}
	if !g.checkForm(c, entry, "/teamgate/admin") {
		return
	}
	teamID := r.PostFormValue("team_id")
	back := pageURL("/teamgate/admin/team", url.Values{"id": {teamID}})
	who := actor(&entry.principal)
	var userID string
	var err error
	if op == "add" {
		login := strings.TrimSpace(r.PostFormValue("user"))
		userID, err = g.deps.Pages.AddMember(r.Context(), teamID, login, who, g.now())
		if errors.Is(err, ErrNotFound) {
			g.showTeam(c, entry, teamID, http.StatusBadRequest, &web.Notice{Bad: true,
				Text: fmt.Sprintf("No user with the id, email or sign-in name “%s” has signed in to teamgate, so nobody was added.", login)}, "")
			return
		}
	} else {
		userID = r.PostFormValue("user_id")
		err = g.deps.Pages.RemoveMember(r.Context(), teamID, userID, who, g.now())
		if errors.Is(err, ErrNotFound) {
			g.showTeam(c, entry, teamID, http.StatusBadRequest, &web.Notice{Bad: true,
				Text: "That user is not a member of this team (any more), so nothing was removed."}, "")
			return
		}
	}
	if err != nil {
		g.writeError(c.Writer, r, errPageData(err))
		return
	}
	// The member's own sessions on this replica see the change at once.
	g.InvalidateUser(userID)
	g.log.Info("team member changed by an admin", "op", op, "team_id", teamID, "user_id", userID,
		"admin_id", entry.principal.UserID, "request_id", requestInfoFrom(r.Context()).id)
	done := map[string]string{"add": "added", "remove": "removed"}[op]
	redirect(c.Writer, back+"&"+url.Values{"done": {done}, "user_id": {userID}}.Encode(), http.StatusSeeOther)
}
