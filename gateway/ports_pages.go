package gateway

import (
	"context"
	"time"
)

// What teamgate's own pages (/teamgate/me and /teamgate/admin) need from the
// rest of teamgate. cmd/teamgate adapts the store to PageSource; Deps.Pages
// nil turns the pages off (they answer 404).

// PageSource reads and writes what the pages show. Lookups of unknown teams
// or users return ErrNotFound.
type PageSource interface {
	// MyTeams returns the user's teams with their params, ordered by alias
	// then id.
	MyTeams(ctx context.Context, userID string) ([]PageTeam, error)
	// LastSync returns the user's newest reconcile (admin changes are left
	// out); ok is false when there is none.
	LastSync(ctx context.Context, userID string) (e PageEvent, ok bool, err error)
	// SetDefaultTeam records the team requests act for when they name
	// none; ErrNotFound when the user is not a member of the team.
	SetDefaultTeam(ctx context.Context, userID, teamID string) error

	// Teams lists teams matching q.Search (alias or id) with member counts,
	// and counts all matches.
	Teams(ctx context.Context, q PageQuery) (teams []PageTeam, total int, err error)
	Team(ctx context.Context, teamID string) (PageTeam, []PageMember, error)
	// Users lists users matching q.Search (email, UPN, name or id).
	Users(ctx context.Context, q PageQuery) (users []PageUser, total int, err error)
	// SyncEvents lists the sync log, newest first.
	SyncEvents(ctx context.Context, q EventPageQuery) (events []PageEvent, total int, err error)
	// TeamAliases names teams (the sync log holds ids).
	TeamAliases(ctx context.Context, ids []string) (map[string]string, error)
	// AddMember makes the user named by login (a user id, email or UPN) a
	// manual member of the team and records it in the sync log as done by
	// actor. It returns the user's id; ErrNotFound for an unknown team or
	// user.
	AddMember(ctx context.Context, teamID, login, actor string, now time.Time) (userID string, err error)
	// RemoveMember removes a membership of any source and records it;
	// ErrNotFound when there was none.
	RemoveMember(ctx context.Context, teamID, userID, actor string, now time.Time) error
}

// PageQuery selects one page of a searchable list.
type PageQuery struct {
	Search string
	Limit  int
	Offset int
}

// EventPageQuery selects one page of the sync log.
type EventPageQuery struct {
	UserID       string // "": everyone
	Outcome      string // "", "ok", "error" or "admin"
	Kind         string // "", "signin", "background" or "revalidate"
	ExcludeAdmin bool
	Limit        int
	Offset       int
}

// PageTeam is a team as the pages show it.
type PageTeam struct {
	ID, Alias      string
	MaxBudget      *float64
	BudgetDuration string
	Models         []string
	TPMLimit       *int64
	RPMLimit       *int64
	Assigned       bool
	Members        int // admin lists only
	UpdatedAt      time.Time
}

// PageMember is one member of a team.
type PageMember struct {
	UserID, Email, DisplayName string
	Role                       string
	Source                     string // "entra" or "manual"
	AddedAt                    time.Time
}

// PageUser is a user in the admin list.
type PageUser struct {
	UserID, Email, UPN, DisplayName string
	Role                            string
	InAdminGroup                    bool
	Teams                           int
	LastLoginAt                     *time.Time
}

// PageEvent is one entry of the sync log.
type PageEvent struct {
	ID                 int64
	UserID             string
	UserEmail          string
	UserName           string
	At                 time.Time
	TeamsCreated       []string
	TeamsRenamed       []string
	TeamsUnassigned    []string
	MembershipsAdded   []string
	MembershipsRemoved []string
	Duration           time.Duration
	Outcome            string // "ok", "error" or "admin"
	Kind               string // "signin", "background" or "revalidate"
	Detail             string
	Error              string
	Actor              string // who made an admin change
}

// BacklogSource reports the LiteLLM provisioning backlog for the admin
// page. The page shows its backlog panel when Deps.Outbox is set; if that
// value also implements BacklogSource the panel shows its exact counts,
// otherwise counts taken from Deps.Outbox's listing.
type BacklogSource interface {
	Backlog(ctx context.Context) (Backlog, error)
}

// Backlog is the state of the LiteLLM provisioning outbox.
type Backlog struct {
	Pending int        // operations waiting to be delivered
	Parked  int        // operations that failed for good and wait for an operator
	Oldest  *time.Time // when the oldest pending operation was enqueued; nil if unknown
}
