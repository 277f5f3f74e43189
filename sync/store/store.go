// Package store keeps teamgate's state (users, teams, memberships, sync
// events and sessions) in SQLite or PostgreSQL behind one interface.
//
// The reconcile engine (sync/teamsync) drives writes through Tx so that a
// whole sign-in sync is one transaction; read methods serve the admin API and
// the session cache. Every write that may race with another replica uses
// INSERT … ON CONFLICT, never check-then-insert, and every batch method issues
// a fixed number of statements whatever the number of rows.
package store

import (
	"context"
	"errors"
	"time"
)

// Membership sources. Reconcile only ever adds or removes SourceEntra rows.
const (
	SourceEntra  = "entra"
	SourceManual = "manual"
)

// Sentinel errors. Backends wrap driver errors so callers can use errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflict")
)

// User is a person known to teamgate, keyed by Entra object id.
type User struct {
	ID             string     `json:"user_id"`
	Email          string     `json:"user_email"`
	UPN            string     `json:"upn"`
	DisplayName    string     `json:"display_name"`
	UserRole       string     `json:"user_role"`
	MaxBudget      *float64   `json:"max_budget"`
	BudgetDuration string     `json:"budget_duration"`
	Models         []string   `json:"models"`
	CreatedAt      time.Time  `json:"created_at"`
	LastLoginAt    *time.Time `json:"last_login_at"`
	// ValidatedAt is when the user was last checked against Graph (at
	// sign-in or by re-validation); nil if never.
	ValidatedAt *time.Time `json:"validated_at"`
}

// UserIdentity is what a sign-in tells us about a user; these fields are
// refreshed at every sign-in.
type UserIdentity struct {
	ID          string
	Email       string // lower-cased mail, else UPN
	UPN         string
	DisplayName string
}

// UserParams are applied only when a user is first created.
type UserParams struct {
	UserRole       string
	MaxBudget      *float64
	BudgetDuration string
	Models         []string
}

// Team mirrors one Entra group (ID = group object id) or a manually created team.
type Team struct {
	ID             string    `json:"team_id"`
	Alias          string    `json:"team_alias"`
	MaxBudget      *float64  `json:"max_budget"`
	BudgetDuration string    `json:"budget_duration"`
	Models         []string  `json:"models"`
	TPMLimit       *int64    `json:"tpm_limit"`
	RPMLimit       *int64    `json:"rpm_limit"`
	Assigned       bool      `json:"assigned"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// TeamParams are applied only when a team is first created.
type TeamParams struct {
	MaxBudget      *float64
	BudgetDuration string
	Models         []string
	TPMLimit       *int64
	RPMLimit       *int64
}

// Membership links a user to a team.
type Membership struct {
	TeamID  string    `json:"team_id"`
	UserID  string    `json:"user_id"`
	Role    string    `json:"role"`
	Source  string    `json:"source"`
	AddedAt time.Time `json:"added_at"`
}

// SyncEvent kinds: what started a reconcile.
const (
	EventSignIn     = "signin" // the default when Kind is empty
	EventBackground = "background"
	EventRevalidate = "revalidate"
	EventAdmin      = "admin" // an admin's change to a team's members (outcome OutcomeAdmin)
)

// SyncEvent records one reconcile: who, when, what changed, how it ended.
type SyncEvent struct {
	ID                 int64         `json:"id"`
	UserID             string        `json:"user_id"`
	At                 time.Time     `json:"at"`
	TeamsCreated       []string      `json:"teams_created"`
	TeamsRenamed       []string      `json:"teams_renamed"`
	TeamsUnassigned    []string      `json:"teams_unassigned"`
	MembershipsAdded   []string      `json:"memberships_added"`   // team ids
	MembershipsRemoved []string      `json:"memberships_removed"` // team ids
	Duration           time.Duration `json:"duration_ns"`
	Outcome            string        `json:"outcome"` // "ok" or "error"
	Error              string        `json:"error,omitempty"`
	Kind               string        `json:"kind"` // Event*; stored as EventSignIn when empty
	Detail             string        `json:"detail,omitempty"`
}

// Session is a server-side sign-in session. ID is the SHA-256 (hex) of the
// opaque id held in the cookie, so a database dump yields no usable cookie.
type Session struct {
	ID        string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// TeamFilter selects teams for listing. Zero value: all teams, ordered by alias then id.
type TeamFilter struct {
	Query  string // case-insensitive substring of alias or id
	Limit  int    // 0: no limit
	Offset int
}

// EventFilter selects sync events, newest first.
type EventFilter struct {
	UserID string // empty: everyone
	Kind   string // empty: every kind
	Limit  int    // 0: 100
}

// Stats counts statements sent to the database since Open (for benchmarks
// and the "0 queries per proxied request" check).
type Stats struct {
	Statements int64
}

// Store is the whole persistence interface. Implementations are safe for
// concurrent use.
type Store interface {
	// InTx runs fn in one transaction: commit if fn returns nil, else roll
	// back. Transient conflicts (serialization failure, deadlock, SQLite
	// busy) are retried a bounded number of times by calling fn again.
	InTx(ctx context.Context, fn func(Tx) error) error

	User(ctx context.Context, id string) (User, error)
	Users(ctx context.Context, limit, offset int) ([]User, error)
	Team(ctx context.Context, id string) (Team, error)
	Teams(ctx context.Context, f TeamFilter) ([]Team, error)
	TeamMembers(ctx context.Context, teamID string) ([]Membership, error)
	// MembersOfTeams returns the memberships of all listed teams at once (nil: all teams).
	MembersOfTeams(ctx context.Context, teamIDs []string) ([]Membership, error)
	// UserTeams returns the teams the user is a member of, ordered by alias then id.
	UserTeams(ctx context.Context, userID string) ([]Team, error)
	SyncEvents(ctx context.Context, f EventFilter) ([]SyncEvent, error)
	// RecordSyncEvent writes an event outside any reconcile transaction
	// (used for failed reconciles, whose transaction rolled back).
	RecordSyncEvent(ctx context.Context, e SyncEvent) error
	// AddManualMembership and RemoveMembership are admin actions.
	AddManualMembership(ctx context.Context, teamID, userID, role string, now time.Time) error
	RemoveMembership(ctx context.Context, teamID, userID string) error

	CreateSession(ctx context.Context, s Session) error
	// Session returns ErrNotFound for an unknown or expired (at now)
	// session, and for one teamgate ended (see EndUserSessions).
	Session(ctx context.Context, id string, now time.Time) (Session, error)
	DeleteSession(ctx context.Context, id string) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)

	Migrate(ctx context.Context) error
	Ping(ctx context.Context) error
	Stats() Stats
	Dialect() string // "sqlite" or "postgres"
	Close() error

	// OutboxStore: LiteLLM provisioning operations (outbox.go).
	OutboxStore
	// KeyStore: identity-assertion signing keys (keys.go).
	KeyStore
	// SigningReplicaStore: which key each replica signs with (signing_replicas.go).
	SigningReplicaStore
	// PagesStore: what teamgate's own pages read and write (pages.go).
	PagesStore
	// SessionLifecycleStore: idle tracking and sign-out everywhere (sessions.go).
	SessionLifecycleStore
	// BackgroundStore: background sync and session re-validation (background.go).
	BackgroundStore
}

// Tx is what a reconcile does inside its transaction. Every method issues a
// constant number of statements, independent of the length of its inputs.
type Tx interface {
	// UpsertUser inserts the user with params, or refreshes the identity
	// fields, last_login_at and validated_at of an existing one (params
	// untouched). It takes the user's row lock, so two reconciles of one
	// user serialize.
	UpsertUser(ctx context.Context, id UserIdentity, params UserParams, now time.Time) (u User, created bool, err error)
	// TeamsByID returns the teams among ids that exist.
	TeamsByID(ctx context.Context, ids []string) ([]Team, error)
	// AssignedTeamIDs returns the ids of all teams with assigned = true.
	AssignedTeamIDs(ctx context.Context) ([]string, error)
	// InsertTeams inserts teams that do not exist yet (ON CONFLICT DO
	// NOTHING) and returns the ids it actually inserted.
	InsertTeams(ctx context.Context, teams []Team, now time.Time) (created []string, err error)
	// RenameTeams sets team_alias where it differs and returns the ids changed.
	RenameTeams(ctx context.Context, aliases map[string]string, now time.Time) (renamed []string, err error)
	// SetAssigned sets the assigned flag on ids where it differs and returns the ids changed.
	SetAssigned(ctx context.Context, ids []string, assigned bool, now time.Time) (changed []string, err error)
	// UserMemberships returns all memberships of the user.
	UserMemberships(ctx context.Context, userID string) ([]Membership, error)
	// AddMemberships inserts (teamID, userID) memberships that do not exist
	// (ON CONFLICT DO NOTHING) and returns the team ids actually added.
	AddMemberships(ctx context.Context, userID string, teamIDs []string, role, source string, now time.Time) (added []string, err error)
	// RemoveMemberships deletes the user's memberships of teamIDs that have
	// the given source and returns the team ids actually removed.
	RemoveMemberships(ctx context.Context, userID string, teamIDs []string, source string) (removed []string, err error)
	InsertSyncEvent(ctx context.Context, e SyncEvent) error
	// EnqueueOutbox adds LiteLLM operations to the outbox, due at now, and
	// returns their ids in input order (see outbox.go).
	EnqueueOutbox(ctx context.Context, ops []OutboxOp, now time.Time) ([]int64, error)
	// PagesTx: the administrators-group flag (pages.go).
	PagesTx
	// BackgroundTx: re-validating a known user (background.go).
	BackgroundTx
}
