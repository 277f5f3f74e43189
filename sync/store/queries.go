package store

import (
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// This file holds every SQL statement, built once per dialect at Open.
//
// All statements use numbered parameters ($1, $2, …): PostgreSQL's native
// syntax, which SQLite (through modernc.org/sqlite) also binds by number, so
// one argument list serves both dialects and a parameter may be repeated.
//
// Lists travel as ONE parameter: a JSON array or object expanded by
// json_each on SQLite; a text[] (ids) or a JSON document (teams, aliases)
// expanded by unnest / jsonb_to_recordset / jsonb_object_keys on PostgreSQL.
// That keeps every statement's text and parameter count independent of the
// input size.

// dialect is what differs between the backends.
type dialect struct {
	name string
	q    queries
	// notify (PostgreSQL) holds the statements that notify the replicas,
	// set once the store knows its channel (sessions_notify.go).
	notify pgNotifySQL
}

// time encodes a timestamp parameter (see rows.go for the storage format).
func (d *dialect) time(t time.Time) any {
	t = normTime(t)
	if d.name == DialectSQLite {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// list encodes an id list parameter, sorted and without duplicates: a JSON
// array for SQLite's json_each, a text[] for PostgreSQL's = ANY.
func (d *dialect) list(ids []string) any {
	ids = sortedUnique(ids)
	if d.name == DialectPostgres {
		return pq.StringArray(ids)
	}
	return encodeList(ids)
}

// limit encodes a LIMIT parameter; n <= 0 means no limit.
func (d *dialect) limit(n int) any {
	switch {
	case n > 0:
		return int64(n)
	case d.name == DialectSQLite:
		return int64(-1) // SQLite: a negative limit is no limit
	default:
		return nil // PostgreSQL: LIMIT NULL is no limit
	}
}

type queries struct {
	user, users, team, teams, teamMembers, membersOfTeams, allMembers, userTeams string
	eventsAll, eventsByUser, eventsByKind, eventsByUserKind, insertEvent         string
	addManualMembership, removeMembership                                        string
	createSession, session, deleteSession, deleteExpiredSessions                 string

	// Tx statements. upsertUser is one statement on PostgreSQL; on SQLite it
	// is insertUserIfNew followed by refreshUser (see tx.go).
	upsertUser, insertUserIfNew, refreshUser                    string
	teamsByID, assignedTeamIDs, insertTeams, renameTeams        string
	setAssigned, userMemberships, addMemberships, removeMembers string

	// background.go: knownUserIDs on the store, lockUser in a Tx.
	knownUserIDs, lockUser string
}

const (
	userCols       = "id, email, upn, display_name, user_role, max_budget, budget_duration, models, created_at, last_login_at, validated_at"
	teamCols       = "id, alias, max_budget, budget_duration, models, tpm_limit, rpm_limit, assigned, created_at, updated_at"
	membershipCols = "team_id, user_id, role, source, added_at"
	eventCols      = "id, user_id, at, teams_created, teams_renamed, teams_unassigned, memberships_added, memberships_removed, duration_ns, outcome, error, kind, detail"
	sessionCols    = "id, user_id, created_at, expires_at"
	// eventInsertCols are the columns of dialect.eventArgs, in its order.
	eventInsertCols = "user_id, at, teams_created, teams_renamed, teams_unassigned, memberships_added, memberships_removed, duration_ns, outcome, error, kind, detail"
)

// qualify prefixes each column of cols with alias.
func qualify(alias, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = alias + "." + p
	}
	return strings.Join(parts, ", ")
}

func newDialect(name string) *dialect {
	// Text ordering: PostgreSQL would otherwise sort by the database's locale,
	// SQLite sorts bytewise; "C" makes both sort the same way.
	collate := ""
	// rows expands list parameter $n (see dialect.list) into rows with one
	// column, value; member is "col is in list parameter $n".
	//
	// SQLite builds a temporary index for IN (subquery). PostgreSQL gets a
	// text[] and = ANY($n): the array is a constant of the (custom) plan,
	// which PostgreSQL probes through a hash table or the index. IN (SELECT
	// unnest or a JSON function) is avoided there: misled by the statistics
	// of a freshly filled table, the planner may re-run the function for
	// every row, which took seconds for 5,000 ids.
	rows := func(n int) string { return fmt.Sprintf("(SELECT value FROM json_each($%d))", n) }
	member := func(col string, n int) string { return col + " IN " + rows(n) }
	if name == DialectPostgres {
		collate = ` COLLATE "C"`
		rows = func(n int) string { return fmt.Sprintf("(SELECT unnest(CAST($%d AS text[])) AS value)", n) }
		member = func(col string, n int) string { return fmt.Sprintf("%s = ANY(CAST($%d AS text[]))", col, n) }
	}
	order := func(cols ...string) string {
		for i, c := range cols {
			cols[i] = c + collate
		}
		return " ORDER BY " + strings.Join(cols, ", ")
	}

	q := queries{
		user:           "SELECT " + userCols + " FROM users WHERE id = $1",
		users:          "SELECT " + userCols + " FROM users" + order("email", "id") + " LIMIT $1 OFFSET $2",
		team:           "SELECT " + teamCols + " FROM teams WHERE id = $1",
		teams:          "SELECT " + teamCols + ` FROM teams WHERE ($1 = '' OR lower(alias) LIKE $2 ESCAPE '\' OR lower(id) LIKE $2 ESCAPE '\')` + order("alias", "id") + " LIMIT $3 OFFSET $4",
		teamMembers:    "SELECT " + membershipCols + " FROM memberships WHERE team_id = $1" + order("user_id"),
		membersOfTeams: "SELECT " + membershipCols + " FROM memberships WHERE " + member("team_id", 1) + order("team_id", "user_id"),
		allMembers:     "SELECT " + membershipCols + " FROM memberships" + order("team_id", "user_id"),
		userTeams: "SELECT " + qualify("t", teamCols) + " FROM teams t JOIN memberships m ON m.team_id = t.id WHERE m.user_id = $1" +
			order("t.alias", "t.id"),
		// One statement per filter, each with an index of its own
		// (sync_events_at, _user_at, _kind_at), the kind of a user's events
		// filtered on the user's index.
		eventsAll:        "SELECT " + eventCols + " FROM sync_events ORDER BY at DESC, id DESC LIMIT $1",
		eventsByUser:     "SELECT " + eventCols + " FROM sync_events WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
		eventsByKind:     "SELECT " + eventCols + " FROM sync_events WHERE kind = $1 ORDER BY at DESC, id DESC LIMIT $2",
		eventsByUserKind: "SELECT " + eventCols + " FROM sync_events WHERE user_id = $1 AND kind = $2 ORDER BY at DESC, id DESC LIMIT $3",
		insertEvent: "INSERT INTO sync_events (" + eventInsertCols + ")" +
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",

		// An admin adding a member makes the membership manual even if
		// reconcile had already added it, so reconcile will not remove it.
		addManualMembership: "INSERT INTO memberships (team_id, user_id, role, source, added_at) VALUES ($1, $2, $3, 'manual', $4)" +
			" ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role, source = excluded.source",
		removeMembership: "DELETE FROM memberships WHERE team_id = $1 AND user_id = $2",

		createSession:         "INSERT INTO sessions (" + sessionCols + ") VALUES ($1, $2, $3, $4)",
		session:               "SELECT " + sessionCols + " FROM sessions WHERE id = $1 AND expires_at > $2 AND ended_reason = ''",
		deleteSession:         "DELETE FROM sessions WHERE id = $1",
		deleteExpiredSessions: "DELETE FROM sessions WHERE expires_at <= $1",

		// $1..$8 identity and params, $9 now (created_at, last_login_at,
		// validated_at: a sign-in checks the user against Graph).
		upsertUser: "INSERT INTO users (" + userCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9)" +
			" ON CONFLICT (id) DO UPDATE SET email = excluded.email, upn = excluded.upn, display_name = excluded.display_name," +
			" last_login_at = excluded.last_login_at, validated_at = excluded.validated_at" +
			// xmax is 0 only on a freshly inserted row version.
			" RETURNING " + userCols + ", (xmax = 0) AS created",
		insertUserIfNew: "INSERT INTO users (" + userCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9)" +
			" ON CONFLICT (id) DO NOTHING RETURNING id",
		refreshUser: "UPDATE users SET email = $2, upn = $3, display_name = $4, last_login_at = $5, validated_at = $5 WHERE id = $1 RETURNING " + userCols,

		teamsByID:       "SELECT " + teamCols + " FROM teams WHERE " + member("id", 1) + order("id"),
		assignedTeamIDs: "SELECT id FROM teams WHERE assigned" + order("id"),
		userMemberships: "SELECT " + membershipCols + " FROM memberships WHERE user_id = $1" + order("team_id"),

		// $1 user, $2 JSON team ids (sorted), $3 role, $4 source, $5 now.
		addMemberships: "INSERT INTO memberships (team_id, user_id, role, source, added_at)" +
			" SELECT value, $1, $3, $4, $5 FROM " + rows(2) + " AS ids WHERE true ORDER BY value" + collate +
			" ON CONFLICT (team_id, user_id) DO NOTHING RETURNING team_id",
		// $1 user, $2 JSON team ids, $3 source.
		removeMembers: "DELETE FROM memberships WHERE user_id = $1 AND source = $3 AND " + member("team_id", 2) + " RETURNING team_id",

		// $1 ids.
		knownUserIDs: "SELECT id FROM users WHERE " + member("id", 1) + order("id"),
		// SQLite: the transaction holds the database's write lock already.
		lockUser: "SELECT " + userCols + " FROM users WHERE id = $1",
	}

	if name == DialectPostgres {
		// $1 JSON teams, $2 now.
		q.insertTeams = "INSERT INTO teams (" + teamCols + ")" +
			" SELECT r.id, r.alias, r.max_budget, coalesce(r.budget_duration, ''), coalesce(r.models, '[]'), r.tpm_limit, r.rpm_limit, coalesce(r.assigned, false), $2, $2" +
			" FROM jsonb_to_recordset(CAST($1 AS jsonb)) AS r(id text, alias text, max_budget double precision, budget_duration text, models text, tpm_limit bigint, rpm_limit bigint, assigned boolean)" +
			` ORDER BY r.id COLLATE "C" ON CONFLICT (id) DO NOTHING RETURNING id`
		// Lock the rows to change in id order first (FOR NO KEY UPDATE is the
		// lock UPDATE itself takes), so concurrent reconciles cannot
		// deadlock; a row changed meanwhile is re-checked after the lock
		// wait and skipped if it no longer differs. New aliases are looked up
		// in the JSON object ($1 ->> id), so no join is needed.
		// $1 JSON {id: alias}, $2 now.
		const alias = "(CAST($1 AS jsonb) ->> id)"
		q.renameTeams = "WITH locked AS (SELECT id FROM teams WHERE id = ANY(ARRAY(SELECT jsonb_object_keys(CAST($1 AS jsonb))))" +
			" AND alias <> " + alias + ` ORDER BY id COLLATE "C" FOR NO KEY UPDATE)` +
			" UPDATE teams SET alias = " + alias + ", updated_at = $2" +
			" WHERE id = ANY(ARRAY(SELECT id FROM locked)) AND alias <> " + alias + " RETURNING id"
		// FOR NO KEY UPDATE is the lock UpsertUser's ON CONFLICT DO UPDATE
		// takes, so a re-validation and a sign-in of one user serialize,
		// while inserts that only reference the user (sessions, manual
		// memberships: FOR KEY SHARE) do not wait for it.
		q.lockUser += " FOR NO KEY UPDATE"
		// $1 JSON ids, $2 assigned, $3 now.
		q.setAssigned = "WITH locked AS (SELECT id FROM teams WHERE " + member("id", 1) + " AND assigned <> $2" +
			` ORDER BY id COLLATE "C" FOR NO KEY UPDATE)` +
			" UPDATE teams SET assigned = $2, updated_at = $3 WHERE id = ANY(ARRAY(SELECT id FROM locked)) AND assigned <> $2 RETURNING id"
	} else {
		// SQLite has one writer at a time, so no lock ordering is needed.
		// The WHERE true is SQLite's documented way to keep INSERT … SELECT
		// … ON CONFLICT unambiguous.
		q.insertTeams = "INSERT INTO teams (" + teamCols + ")" +
			" SELECT value->>'id', value->>'alias', value->>'max_budget', coalesce(value->>'budget_duration', ''), coalesce(value->>'models', '[]')," +
			" value->>'tpm_limit', value->>'rpm_limit', coalesce(value->>'assigned', 0), $2, $2" +
			" FROM json_each($1) WHERE true ORDER BY value->>'id' ON CONFLICT (id) DO NOTHING RETURNING id"
		q.renameTeams = "WITH j AS (SELECT key, value FROM json_each($1))" +
			" UPDATE teams SET alias = j.value, updated_at = $2 FROM j WHERE teams.id = j.key AND teams.alias <> j.value RETURNING id"
		q.setAssigned = "UPDATE teams SET assigned = $2, updated_at = $3 WHERE " + member("id", 1) + " AND assigned <> $2 RETURNING id"
	}
	return &dialect{name: name, q: q}
}
