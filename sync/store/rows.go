package store

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// This file holds the column encodings shared by both backends and the row
// structs sqlx scans into.
//
// Times are stored at microsecond precision in UTC (PostgreSQL's timestamptz
// precision), so both backends return exactly the same values. SQLite keeps
// them as fixed-width ISO 8601 text, which sorts and compares correctly as
// text; PostgreSQL uses timestamptz.

// sqliteTimeLayout is fixed width (always six fractional digits, always Z),
// so that text comparison in SQL is time comparison.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// normTime is what the store keeps of a time.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// dbTime scans a timestamp column from either backend.
type dbTime struct {
	T     time.Time
	Valid bool // false for NULL
}

func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d = dbTime{}
		return nil
	case time.Time:
		*d = dbTime{T: normTime(v), Valid: true}
		return nil
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("store: cannot scan %T into a timestamp", src)
	}
}

func (d *dbTime) parse(s string) error {
	for _, layout := range []string{sqliteTimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			*d = dbTime{T: normTime(t), Valid: true}
			return nil
		}
	}
	return fmt.Errorf("store: cannot parse timestamp %q", s)
}

func (d dbTime) ptr() *time.Time {
	if !d.Valid {
		return nil
	}
	t := d.T
	return &t
}

// jsonList is a list of strings stored as a JSON array in a text column.
// NULL, "" and "null" read back as an empty list, and an empty or nil list is
// written as "[]", so callers always get a non-nil slice.
type jsonList []string

func (l *jsonList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*l = jsonList{}
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("store: cannot scan %T into a JSON list", src)
	}
	var out []string
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return fmt.Errorf("store: bad JSON list %q: %w", b, err)
		}
	}
	if out == nil {
		out = []string{}
	}
	*l = out
	return nil
}

func (l jsonList) Value() (driver.Value, error) { return encodeList(l), nil }

// encodeList is the JSON text of a list, "[]" when empty.
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, err := json.Marshal(l)
	if err != nil { // cannot happen for []string
		panic(err)
	}
	return string(b)
}

// sortedUnique returns a sorted copy of ids without duplicates. Batch
// statements insert in id order so that PostgreSQL takes row locks in the
// same order in every transaction (no lock-order deadlocks).
func sortedUnique(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

type userRow struct {
	ID             string   `db:"id"`
	Email          string   `db:"email"`
	UPN            string   `db:"upn"`
	DisplayName    string   `db:"display_name"`
	UserRole       string   `db:"user_role"`
	MaxBudget      *float64 `db:"max_budget"`
	BudgetDuration string   `db:"budget_duration"`
	Models         jsonList `db:"models"`
	CreatedAt      dbTime   `db:"created_at"`
	LastLoginAt    dbTime   `db:"last_login_at"`
	ValidatedAt    dbTime   `db:"validated_at"`
}

func (r userRow) user() User {
	return User{
		ID: r.ID, Email: r.Email, UPN: r.UPN, DisplayName: r.DisplayName,
		UserRole: r.UserRole, MaxBudget: r.MaxBudget, BudgetDuration: r.BudgetDuration,
		Models: r.Models, CreatedAt: r.CreatedAt.T, LastLoginAt: r.LastLoginAt.ptr(), ValidatedAt: r.ValidatedAt.ptr(),
	}
}

type teamRow struct {
	ID             string   `db:"id"`
	Alias          string   `db:"alias"`
	MaxBudget      *float64 `db:"max_budget"`
	BudgetDuration string   `db:"budget_duration"`
	Models         jsonList `db:"models"`
	TPMLimit       *int64   `db:"tpm_limit"`
	RPMLimit       *int64   `db:"rpm_limit"`
	Assigned       bool     `db:"assigned"`
	CreatedAt      dbTime   `db:"created_at"`
	UpdatedAt      dbTime   `db:"updated_at"`
}

func (r teamRow) team() Team {
	return Team{
		ID: r.ID, Alias: r.Alias, MaxBudget: r.MaxBudget, BudgetDuration: r.BudgetDuration,
		Models: r.Models, TPMLimit: r.TPMLimit, RPMLimit: r.RPMLimit, Assigned: r.Assigned,
		CreatedAt: r.CreatedAt.T, UpdatedAt: r.UpdatedAt.T,
	}
}

func teams(rows []teamRow) []Team {
	out := make([]Team, len(rows))
	for i, r := range rows {
		out[i] = r.team()
	}
	return out
}

type membershipRow struct {
	TeamID  string `db:"team_id"`
	UserID  string `db:"user_id"`
	Role    string `db:"role"`
	Source  string `db:"source"`
	AddedAt dbTime `db:"added_at"`
}

func memberships(rows []membershipRow) []Membership {
	out := make([]Membership, len(rows))
	for i, r := range rows {
		out[i] = Membership{TeamID: r.TeamID, UserID: r.UserID, Role: r.Role, Source: r.Source, AddedAt: r.AddedAt.T}
	}
	return out
}

type eventRow struct {
	ID                 int64    `db:"id"`
	UserID             string   `db:"user_id"`
	At                 dbTime   `db:"at"`
	TeamsCreated       jsonList `db:"teams_created"`
	TeamsRenamed       jsonList `db:"teams_renamed"`
	TeamsUnassigned    jsonList `db:"teams_unassigned"`
	MembershipsAdded   jsonList `db:"memberships_added"`
	MembershipsRemoved jsonList `db:"memberships_removed"`
	DurationNS         int64    `db:"duration_ns"`
	Outcome            string   `db:"outcome"`
	Error              string   `db:"error"`
	Kind               string   `db:"kind"`
	Detail             string   `db:"detail"`
}

func (r eventRow) event() SyncEvent {
	return SyncEvent{
		ID: r.ID, UserID: r.UserID, At: r.At.T,
		TeamsCreated: r.TeamsCreated, TeamsRenamed: r.TeamsRenamed, TeamsUnassigned: r.TeamsUnassigned,
		MembershipsAdded: r.MembershipsAdded, MembershipsRemoved: r.MembershipsRemoved,
		Duration: time.Duration(r.DurationNS), Outcome: r.Outcome, Error: r.Error, Kind: r.Kind, Detail: r.Detail,
	}
}

type sessionRow struct {
	ID        string `db:"id"`
	UserID    string `db:"user_id"`
	CreatedAt dbTime `db:"created_at"`
	ExpiresAt dbTime `db:"expires_at"`
}

// teamInput is one element of the JSON array InsertTeams sends as its single
// parameter. Models is pre-encoded JSON text, stored as is.
type teamInput struct {
	ID             string   `json:"id"`
	Alias          string   `json:"alias"`
	MaxBudget      *float64 `json:"max_budget"`
	BudgetDuration string   `json:"budget_duration"`
	Models         string   `json:"models"`
	TPMLimit       *int64   `json:"tpm_limit"`
	RPMLimit       *int64   `json:"rpm_limit"`
	Assigned       bool     `json:"assigned"`
}

// jsonText encodes a batch parameter.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// eventArgs are the parameters of insertEvent (eventInsertCols). An empty
// Kind is stored as EventSignIn.
func (d *dialect) eventArgs(e SyncEvent) []any {
	kind := e.Kind
	if kind == "" {
		kind = EventSignIn
	}
	return []any{
		e.UserID, d.time(e.At),
		jsonList(e.TeamsCreated), jsonList(e.TeamsRenamed), jsonList(e.TeamsUnassigned),
		jsonList(e.MembershipsAdded), jsonList(e.MembershipsRemoved),
		int64(e.Duration), e.Outcome, e.Error, kind, e.Detail,
	}
}
