package gateway

import (
	"context"
	"errors"
	"time"
)

// This file declares what the gateway needs from the rest of teamgate. The
// sync engine and the store satisfy these through small adapters in
// cmd/teamgate; the gateway never imports sync/... packages.

// Identity is what a verified ID token says about the person signing in.
type Identity struct {
	UserID      string // Entra object id (oid)
	TenantID    string // tid
	Email       string // email claim, may be empty
	UPN         string // preferred_username
	DisplayName string // name
}

// Syncer reconciles a user's teams at sign-in. It returns a *SyncError whose
// Kind tells the gateway which status and page to show.
type Syncer interface {
	Sync(ctx context.Context, id Identity) error
}

// SyncErrorKind classifies a failed sync for the user-facing answer.
type SyncErrorKind int

const (
	SyncInternal    SyncErrorKind = iota // database or unexpected failure: 500/503
	SyncUnavailable                      // Graph or Entra unavailable: 503, try again
	SyncPermission                       // the app lacks a Graph permission: 502, contact your administrator
)

// SyncError is returned by Syncer implementations.
type SyncError struct {
	Kind       SyncErrorKind
	Permission string // for SyncPermission: the missing application permission
	Err        error  // the cause, for the log only
}

func (e *SyncError) Error() string { return "sync: " + e.Err.Error() }
func (e *SyncError) Unwrap() error { return e.Err }

// ErrNoSession is returned by SessionStore.LookupSession for an unknown,
// expired or revoked session.
var ErrNoSession = errors.New("gateway: no such session")

// SessionRecord is the server-side half of a session. ID is the SHA-256 hex
// of the opaque id in the cookie.
type SessionRecord struct {
	ID        string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastSeenAt is the session's last recorded request (session_idle.go);
	// zero means CreatedAt.
	LastSeenAt time.Time
	// EndedReason is set when teamgate ended the session (one of the
	// SessionEnded* values, session_revalidate.go); the record is kept
	// until it expires so that the user can be told why.
	EndedReason string
}

// TeamRef is a team a principal belongs to.
type TeamRef struct {
	ID    string
	Alias string
}

// Principal is everything the proxy injects for a signed-in user. It is
// cached per session so that steady-state proxying does not touch the database.
type Principal struct {
	UserID      string
	Email       string
	UPN         string
	DisplayName string
	Role        string
	Teams       []TeamRef // ordered by alias, then id
	// DefaultTeamID is the team the user chose on /teamgate/me for
	// requests that name none; "" or a team no longer in Teams means the
	// first team (ports_pages.go).
	DefaultTeamID string
	// InAdminGroup is whether the user was in one of admin.group_ids at
	// their last sign-in.
	InAdminGroup bool
	// ValidatedAt is when the user was last checked with the directory
	// (sign-in or re-validation); zero means the session's start.
	ValidatedAt time.Time
}

// SessionStore persists sessions.
type SessionStore interface {
	CreateSession(ctx context.Context, s SessionRecord) error
	// LookupSession returns the session and the current principal of its
	// user, or ErrNoSession.
	LookupSession(ctx context.Context, id string, now time.Time) (SessionRecord, Principal, error)
	DeleteSession(ctx context.Context, id string) error
}

// AdminMember is one membership in the admin API.
type AdminMember struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
	Source string `json:"source"`
}

// AdminTeam is a team in the admin API (a public contract: do not rename fields).
type AdminTeam struct {
	TeamID         string        `json:"team_id"`
	TeamAlias      string        `json:"team_alias"`
	MaxBudget      *float64      `json:"max_budget"`
	BudgetDuration *string       `json:"budget_duration"`
	Models         []string      `json:"models"`
	TPMLimit       *int64        `json:"tpm_limit"`
	RPMLimit       *int64        `json:"rpm_limit"`
	Assigned       bool          `json:"assigned"`
	Members        []AdminMember `json:"members"`
	CreatedAt      time.Time     `json:"created_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
}

// AdminUser is a user in the admin API.
type AdminUser struct {
	UserID         string     `json:"user_id"`
	UserEmail      string     `json:"user_email"`
	UPN            string     `json:"upn"`
	DisplayName    string     `json:"display_name"`
	UserRole       string     `json:"user_role"`
	MaxBudget      *float64   `json:"max_budget"`
	BudgetDuration *string    `json:"budget_duration"`
	Models         []string   `json:"models"`
	Teams          []string   `json:"teams"`
	LastLoginAt    *time.Time `json:"last_login_at"`
}

// AdminSyncEvent is a sync event in the admin API.
type AdminSyncEvent struct {
	ID                 int64     `json:"id"`
	UserID             string    `json:"user_id"`
	At                 time.Time `json:"at"`
	TeamsCreated       []string  `json:"teams_created"`
	TeamsRenamed       []string  `json:"teams_renamed"`
	TeamsUnassigned    []string  `json:"teams_unassigned"`
	MembershipsAdded   []string  `json:"memberships_added"`
	MembershipsRemoved []string  `json:"memberships_removed"`
	DurationMS         float64   `json:"duration_ms"`
	Outcome            string    `json:"outcome"`
	Error              string    `json:"error,omitempty"`
	// Kind is "signin", "background", "revalidate" or "admin"; a background event
	// without user_id describes a whole run, with its counts in Detail.
	Kind   string `json:"kind"`
	Detail string `json:"detail,omitempty"`
}

// Directory serves the admin API. Not-found lookups return ErrNotFound.
type Directory interface {
	Teams(ctx context.Context) ([]AdminTeam, error)
	Team(ctx context.Context, id string) (AdminTeam, error)
	User(ctx context.Context, id string) (AdminUser, error)
	// SyncEvents lists sync events, newest first; userID and kind filter
	// when set.
	SyncEvents(ctx context.Context, userID, kind string, limit int) ([]AdminSyncEvent, error)
}

// ErrNotFound is returned by Directory lookups.
var ErrNotFound = errors.New("gateway: not found")

// Pinger reports whether a dependency is reachable (readyz).
type Pinger interface {
	Ping(ctx context.Context) error
}
