package store

import (
	"context"
	"strings"
)

// Read methods serve the admin API. Each sends one statement to the read
// pool and returns non-nil slices (an empty list encodes as [] in JSON).

// User returns ErrNotFound for an unknown id.
func (s *sqlStore) User(ctx context.Context, id string) (User, error) {
	var row userRow
	if err := s.reader().get(ctx, &row, s.d.q.user, id); err != nil {
		return User{}, wrapErr("user", err)
	}
	return row.user(), nil
}

// Users lists users ordered by email then id; limit 0 means no limit.
func (s *sqlStore) Users(ctx context.Context, limit, offset int) ([]User, error) {
	var rows []userRow
	if err := s.reader().sel(ctx, &rows, s.d.q.users, s.d.limit(limit), int64(max(offset, 0))); err != nil {
		return nil, wrapErr("users", err)
	}
	out := make([]User, len(rows))
	for i, r := range rows {
		out[i] = r.user()
	}
	return out, nil
}

// Team returns ErrNotFound for an unknown id.
func (s *sqlStore) Team(ctx context.Context, id string) (Team, error) {
	var row teamRow
	if err := s.reader().get(ctx, &row, s.d.q.team, id); err != nil {
		return Team{}, wrapErr("team", err)
	}
	return row.team(), nil
}

// Teams lists teams ordered by alias then id (bytewise on both backends).
// The query matches case-insensitively (ASCII case on SQLite) as a literal
// substring: % and _ in it have no special meaning.
func (s *sqlStore) Teams(ctx context.Context, f TeamFilter) ([]Team, error) {
	pattern := "%" + likeEscaper.Replace(strings.ToLower(f.Query)) + "%"
	var rows []teamRow
	if err := s.reader().sel(ctx, &rows, s.d.q.teams, f.Query, pattern, s.d.limit(f.Limit), int64(max(f.Offset, 0))); err != nil {
		return nil, wrapErr("teams", err)
	}
	return teams(rows), nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// TeamMembers returns the team's memberships ordered by user id; an unknown
// team has none (no ErrNotFound: call Team to tell the two apart).
func (s *sqlStore) TeamMembers(ctx context.Context, teamID string) ([]Membership, error) {
	var rows []membershipRow
	if err := s.reader().sel(ctx, &rows, s.d.q.teamMembers, teamID); err != nil {
		return nil, wrapErr("team members", err)
	}
	return memberships(rows), nil
}

// MembersOfTeams returns memberships ordered by team id then user id; nil
// teamIDs means all teams, an empty non-nil list means none.
func (s *sqlStore) MembersOfTeams(ctx context.Context, teamIDs []string) ([]Membership, error) {
	var rows []membershipRow
	var err error
	switch {
	case teamIDs == nil:
		err = s.reader().sel(ctx, &rows, s.d.q.allMembers)
	case len(teamIDs) == 0:
		return []Membership{}, nil
	default:
		err = s.reader().sel(ctx, &rows, s.d.q.membersOfTeams, s.d.list(teamIDs))
	}
	if err != nil {
		return nil, wrapErr("members of teams", err)
	}
	return memberships(rows), nil
}

// UserTeams returns the user's teams ordered by alias then id.
func (s *sqlStore) UserTeams(ctx context.Context, userID string) ([]Team, error) {
	var rows []teamRow
	if err := s.reader().sel(ctx, &rows, s.d.q.userTeams, userID); err != nil {
		return nil, wrapErr("user teams", err)
	}
	return teams(rows), nil
}

// SyncEvents returns events newest first (ties broken by id, newest first),
// of one user and/or one kind when f names them.
func (s *sqlStore) SyncEvents(ctx context.Context, f EventFilter) ([]SyncEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var rows []eventRow
	var err error
	switch {
	case f.UserID == "" && f.Kind == "":
		err = s.reader().sel(ctx, &rows, s.d.q.eventsAll, int64(limit))
	case f.Kind == "":
		err = s.reader().sel(ctx, &rows, s.d.q.eventsByUser, f.UserID, int64(limit))
	case f.UserID == "":
		err = s.reader().sel(ctx, &rows, s.d.q.eventsByKind, f.Kind, int64(limit))
	default:
		err = s.reader().sel(ctx, &rows, s.d.q.eventsByUserKind, f.UserID, f.Kind, int64(limit))
	}
	if err != nil {
		return nil, wrapErr("sync events", err)
	}
	out := make([]SyncEvent, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out, nil
}
