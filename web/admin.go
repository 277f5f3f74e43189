package web

import (
	"io"
	"time"
)

// This file holds the admin pages under /teamgate/admin.

// Admin sections, for the admin pages' own navigation.
const (
	SectionTeams  = "teams"
	SectionUsers  = "users"
	SectionEvents = "events"
)

// AdminTeamsPage lists teams with search and pagination.
type AdminTeamsPage struct {
	Chrome
	Query  string
	Teams  []TeamRow
	Pager  Pager
	Outbox *OutboxPanel // nil when LiteLLM provisioning is off
}

// TeamRow is a team with its params and member count.
type TeamRow struct {
	ID, Alias      string
	Assigned       bool
	Members        int
	MaxBudget      *float64
	BudgetDuration string
	Models         []string
	TPMLimit       *int64
	RPMLimit       *int64
	UpdatedAt      time.Time
	Href           string // the team's page
}

// OutboxPanel summarises the LiteLLM provisioning backlog.
type OutboxPanel struct {
	Stats []Stat
	Note  string // e.g. the oldest pending operation, or why stats are missing
}

// Stat is one labelled figure.
type Stat struct {
	Label, Value string
	Bad          bool // needs attention (e.g. parked operations)
}

// Pager describes one page of a long list. Prev and Next are hrefs, empty at
// the ends.
type Pager struct {
	Noun       string // "teams", "users", "events"
	One        string // the noun for one: "team", "user", "event"
	From, To   int    // 1-based positions shown on this page (0, 0 when empty)
	Total      int
	Page       int
	Pages      int
	Prev, Next string
}

// RenderAdminTeams writes the team list.
func RenderAdminTeams(w io.Writer, p AdminTeamsPage) error {
	return render(w, adminTeamsTemplate, "Teams", true, p.Chrome, adminPage{Section: SectionTeams, Page: p})
}

// AdminTeamPage is one team with its members and the forms to change them.
type AdminTeamPage struct {
	Chrome
	Team       TeamRow
	Members    []MemberRow
	CSRFToken  string
	Notice     *Notice
	EventsHref string // the sync log
}

// MemberRow is one member of a team.
type MemberRow struct {
	UserID, Email, DisplayName string
	Role                       string
	Source                     string // "entra" or "manual"
	AddedAt                    time.Time
}

// RenderAdminTeam writes a team's page.
func RenderAdminTeam(w io.Writer, p AdminTeamPage) error {
	title := p.Team.Alias
	if title == "" {
		title = p.Team.ID
	}
	return render(w, adminTeamTemplate, "Team "+title, true, p.Chrome, adminPage{Section: SectionTeams, Page: p})
}

// AdminUsersPage lists users with search and pagination.
type AdminUsersPage struct {
	Chrome
	Query string
	Users []UserRow
	Pager Pager
}

// UserRow is one user.
type UserRow struct {
	UserID, Email, DisplayName string
	Role                       string
	InAdminGroup               bool
	IsAdmin                    bool
	Teams                      int
	LastLoginAt                *time.Time
	EventsHref                 string
}

// RenderAdminUsers writes the user list.
func RenderAdminUsers(w io.Writer, p AdminUsersPage) error {
	return render(w, adminUsersTemplate, "Users", true, p.Chrome, adminPage{Section: SectionUsers, Page: p})
}

// AdminEventsPage is the sync log with its filters.
type AdminEventsPage struct {
	Chrome
	UserID   string
	Outcome  string
	Outcomes []Option
	Kind     string
	Kinds    []Option
	Events   []SyncEvent
	Pager    Pager
}

// Option is one choice of a select.
type Option struct {
	Value, Label string
	Selected     bool
}

// RenderAdminEvents writes the sync log.
func RenderAdminEvents(w io.Writer, p AdminEventsPage) error {
	return render(w, adminEventsTemplate, "Sync log", true, p.Chrome, adminPage{Section: SectionEvents, Page: p})
}

// adminPage lets the shared admin navigation know its section.
type adminPage struct {
	Section string
	Page    any
}
