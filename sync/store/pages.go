package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// What teamgate's own pages read and write (migration 0004): a user's
// default team and administrators-group flag, paginated lists with counts
// for the admin pages, the sync log with filters, and admin changes to team
// members recorded in that log.

// Sync event outcomes. Reconciles record OutcomeOK or OutcomeError; an
// admin's change to a team's members is recorded as OutcomeAdmin with its
// Actor.
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
	OutcomeAdmin = "admin"
)

// UserPrefs are per-user settings kept next to the synced identity.
type UserPrefs struct {
	DefaultTeamID string // "" when the user has not chosen one
	InAdminGroup  bool   // in one of admin.group_ids at the last sync
}

// TeamSummary is a team with its member count.
type TeamSummary struct {
	Team
	Members int `json:"members"`
}

// UserSummary is a user with their settings and team count.
type UserSummary struct {
	User
	UserPrefs
	Teams int `json:"teams"`
}

// UserFilter selects users for listing, ordered by email then id.
type UserFilter struct {
	Query  string // case-insensitive substring of email, UPN, name or id
	Limit  int    // 0: no limit
	Offset int
}

// EventQuery selects sync events, newest first.
type EventQuery struct {
	UserID       string // "": everyone
	Outcome      string // "": every outcome
	ExcludeAdmin bool   // leave out admin changes (a user's own sync history)
	Kind         string // "": every kind (see SyncEvent.Kind)
	Limit        int    // 0: 100
	Offset       int
}

// LoggedEvent is a sync event with who made it (admin changes) and the
// email and name of the user it concerns, when that user is known.
type LoggedEvent struct {
	SyncEvent
	Actor       string `json:"actor,omitempty"`
	UserEmail   string `json:"user_email"`
	DisplayName string `json:"display_name"`
}

// MemberDetail is a membership with the member's email and name.
type MemberDetail struct {
	Membership
	Email       string `json:"user_email"`
	DisplayName string `json:"display_name"`
}

// PagesStore is the part of Store behind teamgate's own pages.
type PagesStore interface {
	// UserPrefs returns ErrNotFound for an unknown user.
	UserPrefs(ctx context.Context, userID string) (UserPrefs, error)
	// SetDefaultTeam records the user's default team; "" clears it. It
	// returns ErrNotFound when the user is unknown or not a member of the
	// team, so a stale form cannot point a user at someone else's team.
	SetDefaultTeam(ctx context.Context, userID, teamID string) error

	// TeamSummaries lists teams like Teams, with member counts.
	TeamSummaries(ctx context.Context, f TeamFilter) ([]TeamSummary, error)
	// CountTeams counts the teams f.Query matches (Limit and Offset ignored).
	CountTeams(ctx context.Context, f TeamFilter) (int, error)
	// TeamAliases returns the alias of each existing team among ids.
	TeamAliases(ctx context.Context, ids []string) (map[string]string, error)
	// TeamMemberDetails returns the team's members ordered by email, then id.
	TeamMemberDetails(ctx context.Context, teamID string) ([]MemberDetail, error)

	UserSummaries(ctx context.Context, f UserFilter) ([]UserSummary, error)
	CountUsers(ctx context.Context, f UserFilter) (int, error)
	// UserByLogin finds a user by id, or by email or UPN (case-insensitive);
	// an exact id match wins. ErrNotFound when none matches.
	UserByLogin(ctx context.Context, login string) (User, error)

	FindSyncEvents(ctx context.Context, q EventQuery) ([]LoggedEvent, error)
	CountSyncEvents(ctx context.Context, q EventQuery) (int, error)

	// AddMemberAsAdmin makes userID a manual member of teamID (see
	// AddManualMembership) and records an admin event by actor, in one
	// transaction. ErrNotFound for an unknown team or user.
	AddMemberAsAdmin(ctx context.Context, teamID, userID, role, actor string, now time.Time) error
	// RemoveMemberAsAdmin removes the membership whatever its source and
	// records an admin event by actor, in one transaction. ErrNotFound when
	// there was no such membership.
	RemoveMemberAsAdmin(ctx context.Context, teamID, userID, actor string, now time.Time) error
}

// PagesTx is the part of Tx a reconcile uses for the pages.
type PagesTx interface {
	// SetInAdminGroup records whether the user is in an administrators
	// group (one statement; a no-op when unchanged).
	SetInAdminGroup(ctx context.Context, userID string, in bool) error
}

func (s *sqlStore) UserPrefs(ctx context.Context, userID string) (UserPrefs, error) {
	var row prefsRow
	if err := s.reader().get(ctx, &row, s.d.pages().prefs, userID); err != nil {
		return UserPrefs{}, wrapErr("user prefs", err)
	}
	return row.prefs(), nil
}

func (s *sqlStore) SetDefaultTeam(ctx context.Context, userID, teamID string) error {
	res, err := s.writer().exec(ctx, s.d.pages().setDefaultTeam, userID, teamID)
	if err != nil {
		return wrapErr("set default team", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrapErr("set default team", err)
	} else if n == 0 {
		return fmt.Errorf("store: set default team: unknown user or not a member of the team: %w", ErrNotFound)
	}
	return s.d.notifyUserChanged(ctx, s.writer(), userID)
}

func (s *sqlStore) TeamSummaries(ctx context.Context, f TeamFilter) ([]TeamSummary, error) {
	var rows []struct {
		teamRow
		Members int `db:"members"`
	}
	if err := s.reader().sel(ctx, &rows, s.d.pages().teamSummaries, f.Query, likePattern(f.Query), s.d.limit(f.Limit), int64(max(f.Offset, 0))); err != nil {
		return nil, wrapErr("team summaries", err)
	}
	out := make([]TeamSummary, len(rows))
	for i, r := range rows {
		out[i] = TeamSummary{Team: r.team(), Members: r.Members}
	}
	return out, nil
}

func (s *sqlStore) CountTeams(ctx context.Context, f TeamFilter) (int, error) {
	var n int
	err := s.reader().get(ctx, &n, s.d.pages().countTeams, f.Query, likePattern(f.Query))
	return n, wrapErr("count teams", err)
}

func (s *sqlStore) TeamAliases(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ID    string `db:"id"`
		Alias string `db:"alias"`
	}
	if err := s.reader().sel(ctx, &rows, s.d.pages().teamAliases, s.d.list(ids)); err != nil {
		return nil, wrapErr("team aliases", err)
	}
	for _, r := range rows {
		out[r.ID] = r.Alias
	}
	return out, nil
}

func (s *sqlStore) TeamMemberDetails(ctx context.Context, teamID string) ([]MemberDetail, error) {
	var rows []struct {
		membershipRow
		Email       string `db:"email"`
		DisplayName string `db:"display_name"`
	}
	if err := s.reader().sel(ctx, &rows, s.d.pages().memberDetails, teamID); err != nil {
		return nil, wrapErr("team member details", err)
	}
	out := make([]MemberDetail, len(rows))
	for i, r := range rows {
		out[i] = MemberDetail{Membership: memberships([]membershipRow{r.membershipRow})[0], Email: r.Email, DisplayName: r.DisplayName}
	}
	return out, nil
}

func (s *sqlStore) UserSummaries(ctx context.Context, f UserFilter) ([]UserSummary, error) {
	var rows []struct {
		userRow
		prefsRow
		Teams int `db:"teams"`
	}
	if err := s.reader().sel(ctx, &rows, s.d.pages().userSummaries, f.Query, likePattern(f.Query), s.d.limit(f.Limit), int64(max(f.Offset, 0))); err != nil {
		return nil, wrapErr("user summaries", err)
	}
	out := make([]UserSummary, len(rows))
	for i, r := range rows {
		out[i] = UserSummary{User: r.user(), UserPrefs: r.prefs(), Teams: r.Teams}
	}
	return out, nil
}

func (s *sqlStore) CountUsers(ctx context.Context, f UserFilter) (int, error) {
	var n int
	err := s.reader().get(ctx, &n, s.d.pages().countUsers, f.Query, likePattern(f.Query))
	return n, wrapErr("count users", err)
}

func (s *sqlStore) UserByLogin(ctx context.Context, login string) (User, error) {
	login = strings.TrimSpace(login)
	if login == "" {
		return User{}, fmt.Errorf("store: user by login: %w", ErrNotFound)
	}
	var row userRow
	if err := s.reader().get(ctx, &row, s.d.pages().userByLogin, login, strings.ToLower(login)); err != nil {
		return User{}, wrapErr("user by login", err)
	}
	return row.user(), nil
}

func (s *sqlStore) FindSyncEvents(ctx context.Context, q EventQuery) ([]LoggedEvent, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	var rows []struct {
		eventRow
		Actor       string `db:"actor"`
		UserEmail   string `db:"user_email"`
		DisplayName string `db:"user_name"`
	}
	err := s.reader().sel(ctx, &rows, s.d.pages().findEvents, q.UserID, q.Outcome, q.ExcludeAdmin, q.Kind, int64(limit), int64(max(q.Offset, 0)))
	if err != nil {
		return nil, wrapErr("find sync events", err)
	}
	out := make([]LoggedEvent, len(rows))
	for i, r := range rows {
		out[i] = LoggedEvent{SyncEvent: r.event(), Actor: r.Actor, UserEmail: r.UserEmail, DisplayName: r.DisplayName}
	}
	return out, nil
}

func (s *sqlStore) CountSyncEvents(ctx context.Context, q EventQuery) (int, error) {
	var n int
	err := s.reader().get(ctx, &n, s.d.pages().countEvents, q.UserID, q.Outcome, q.ExcludeAdmin, q.Kind)
	return n, wrapErr("count sync events", err)
}

func (s *sqlStore) AddMemberAsAdmin(ctx context.Context, teamID, userID, role, actor string, now time.Time) error {
	return s.adminChange(ctx, "add member", SyncEvent{UserID: userID, At: now, MembershipsAdded: []string{teamID}}, actor,
		func(run runner) error {
			_, err := run.exec(ctx, s.d.q.addManualMembership, teamID, userID, role, s.d.time(now))
			return err
		})
}

func (s *sqlStore) RemoveMemberAsAdmin(ctx context.Context, teamID, userID, actor string, now time.Time) error {
	return s.adminChange(ctx, "remove member", SyncEvent{UserID: userID, At: now, MembershipsRemoved: []string{teamID}}, actor,
		func(run runner) error {
			res, err := run.exec(ctx, s.d.q.removeMembership, teamID, userID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return errNoMembership
			}
			return nil
		})
}

var errNoMembership = fmt.Errorf("no such membership: %w", ErrNotFound)

// adminChange runs change and records its event in one transaction: two
// statements besides BEGIN and COMMIT (three on PostgreSQL, which also
// tells the other replicas that the user's teams changed).
func (s *sqlStore) adminChange(ctx context.Context, op string, e SyncEvent, actor string, change func(runner) error) error {
	e.Outcome, e.Kind = OutcomeAdmin, EventAdmin
	err := s.InTx(ctx, func(tx Tx) error {
		run := tx.(*sqlTx).run
		if err := change(run); err != nil {
			return err
		}
		if err := s.d.notifyUserChanged(ctx, run, e.UserID); err != nil {
			return err
		}
		args := append(s.d.eventArgs(e), actor)
		_, err := run.exec(ctx, s.d.pages().insertAdminEvent, args...)
		return err
	})
	if errors.Is(err, errNoMembership) {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return wrapErr(op, err)
}

// SetInAdminGroup: one statement, touching the row only when the flag
// changes; when it does, the replicas are told (on commit) that the user
// changed, so that their cached sessions of the user lose (or gain) the
// admin pages at once. Two statements then on PostgreSQL.
func (t *sqlTx) SetInAdminGroup(ctx context.Context, userID string, in bool) error {
	res, err := t.run.exec(ctx, t.d.pages().setInAdminGroup, userID, in)
	if err != nil {
		return wrapErr("set in admin group", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrapErr("set in admin group", err)
	} else if n == 0 {
		return nil
	}
	return t.d.notifyUserChanged(ctx, t.run, userID)
}

// likePattern is the LIKE pattern matching q as a literal, case-insensitive substring.
func likePattern(q string) string {
	return "%" + likeEscaper.Replace(strings.ToLower(q)) + "%"
}

type prefsRow struct {
	DefaultTeamID *string `db:"default_team_id"`
	InAdminGroup  bool    `db:"in_admin_group"`
}

func (r prefsRow) prefs() UserPrefs {
	p := UserPrefs{InAdminGroup: r.InAdminGroup}
	if r.DefaultTeamID != nil {
		p.DefaultTeamID = *r.DefaultTeamID
	}
	return p
}

var (
	_ PagesStore = (*sqlStore)(nil)
	_ PagesTx    = (*sqlTx)(nil)
)
