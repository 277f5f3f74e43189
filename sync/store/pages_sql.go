package store

import (
	"fmt"
	"strings"
)

// The statements of pages.go, built once per dialect. Each method sends one
// of them (the admin changes two, in one transaction). Filters are written
// as ($n = '' OR col = $n) so that one statement text serves every
// combination; lib/pq sends unnamed statements, which PostgreSQL plans with
// the actual values, so the unused branches cost nothing.

type pagesQueries struct {
	prefs, setDefaultTeam, setInAdminGroup                string
	teamSummaries, countTeams, teamAliases, memberDetails string
	userSummaries, countUsers, userByLogin                string
	findEvents, countEvents, insertAdminEvent             string
}

var pagesQ = map[string]*pagesQueries{
	DialectSQLite:   newPagesQueries(DialectSQLite),
	DialectPostgres: newPagesQueries(DialectPostgres),
}

func (d *dialect) pages() *pagesQueries { return pagesQ[d.name] }

func newPagesQueries(dialect string) *pagesQueries {
	collate := ""
	inList := func(col string, n int) string { return fmt.Sprintf("%s IN (SELECT value FROM json_each($%d))", col, n) }
	if dialect == DialectPostgres {
		collate = ` COLLATE "C"` // bytewise, as on SQLite (see queries.go)
		inList = func(col string, n int) string { return fmt.Sprintf("%s = ANY(CAST($%d AS text[]))", col, n) }
	}
	order := func(cols ...string) string {
		for i, c := range cols {
			cols[i] = c + collate
		}
		return " ORDER BY " + strings.Join(cols, ", ")
	}
	// $1 query, $2 its LIKE pattern (see likePattern).
	const teamMatch = ` WHERE ($1 = '' OR lower(alias) LIKE $2 ESCAPE '\' OR lower(id) LIKE $2 ESCAPE '\')`
	const userMatch = ` WHERE ($1 = '' OR lower(email) LIKE $2 ESCAPE '\' OR lower(upn) LIKE $2 ESCAPE '\'` +
		` OR lower(display_name) LIKE $2 ESCAPE '\' OR lower(id) LIKE $2 ESCAPE '\')`
	// $1 user id or '', $2 outcome or '', $3 exclude admin changes, $4 kind or ''.
	const eventMatch = ` WHERE ($1 = '' OR e.user_id = $1) AND ($2 = '' OR e.outcome = $2) AND (NOT $3 OR e.outcome <> 'admin')` +
		` AND ($4 = '' OR e.kind = $4)`
	const prefsCols = "default_team_id, in_admin_group"

	return &pagesQueries{
		prefs: "SELECT " + prefsCols + " FROM users WHERE id = $1",
		// $1 user, $2 team or '' (clears). The membership check and the
		// write are one statement, so a concurrent removal cannot slip in
		// between them.
		setDefaultTeam: "UPDATE users SET default_team_id = NULLIF(CAST($2 AS text), '') WHERE id = $1" +
			" AND ($2 = '' OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = $1 AND m.team_id = $2))",
		setInAdminGroup: "UPDATE users SET in_admin_group = $2 WHERE id = $1 AND in_admin_group <> $2",

		// Member counts use the memberships primary key (team_id, user_id).
		teamSummaries: "SELECT " + teamCols + ", (SELECT count(*) FROM memberships m WHERE m.team_id = teams.id) AS members" +
			" FROM teams" + teamMatch + order("alias", "id") + " LIMIT $3 OFFSET $4",
		countTeams:  "SELECT count(*) FROM teams" + teamMatch,
		teamAliases: "SELECT id, alias FROM teams WHERE " + inList("id", 1),
		memberDetails: "SELECT " + qualify("m", membershipCols) + ", coalesce(u.email, '') AS email, coalesce(u.display_name, '') AS display_name" +
			" FROM memberships m LEFT JOIN users u ON u.id = m.user_id WHERE m.team_id = $1" + order("coalesce(u.email, '')", "m.user_id"),

		// Team counts use the memberships_user index.
		userSummaries: "SELECT " + userCols + ", " + prefsCols + ", (SELECT count(*) FROM memberships m WHERE m.user_id = users.id) AS teams" +
			" FROM users" + userMatch + order("email", "id") + " LIMIT $3 OFFSET $4",
		countUsers: "SELECT count(*) FROM users" + userMatch,
		// $1 login as typed, $2 lower-cased.
		userByLogin: "SELECT " + userCols + " FROM users WHERE id = $1 OR lower(email) = $2 OR lower(upn) = $2" +
			" ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END, id" + collate + " LIMIT 1",

		findEvents: "SELECT " + qualify("e", eventCols) + ", e.actor, coalesce(u.email, '') AS user_email, coalesce(u.display_name, '') AS user_name" +
			" FROM sync_events e LEFT JOIN users u ON u.id = e.user_id" + eventMatch +
			" ORDER BY e.at DESC, e.id DESC LIMIT $5 OFFSET $6",
		countEvents: "SELECT count(*) FROM sync_events e" + eventMatch,
		insertAdminEvent: "INSERT INTO sync_events (" + eventInsertCols + ", actor)" +
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
	}
}
