package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lib/pq"
)

// This file implements OutboxStore and Tx.EnqueueOutbox for both dialects.
// Each method sends one statement (RequeueOutbox up to three more to explain
// a miss and mark a superseded operation), whatever the number of operations.

const outboxCols = "id, kind, team_id, user_id, body, status, attempts, next_attempt_at, lease_owner, lease_until, last_error, created_at, updated_at, superseded_by"

type outboxQueries struct {
	enqueue, claim, complete, retryLater, park, requeue, status string
	list, byIDs, stats, prune                                   string
	supersededBy, supersede                                     string
}

// outboxQ holds the statements of each dialect, built once.
var outboxQ = map[string]*outboxQueries{
	DialectSQLite:   newOutboxQueries(DialectSQLite),
	DialectPostgres: newOutboxQueries(DialectPostgres),
}

func newOutboxQueries(dialect string) *outboxQueries {
	// notBlocked is "no earlier pending operation conflicts with o" (the
	// ordering rule in outbox.go), split into five probes that each are an
	// index lookup, so a claim costs O(log n) per candidate however many
	// operations wait on one team (thousands of member_adds to one large
	// team while LiteLLM is down): an earlier team-level operation on o's
	// team; one on the same team and user; an earlier user-level operation
	// on o's user; and, for a team-level (user-level) o, anything earlier on
	// its team (user). The e.team_id <> '' and e.user_id <> '' terms repeat
	// the partial indexes' predicates so that both planners may use them.
	//
	// On PostgreSQL, OFFSET 0 keeps each probe a per-row subplan, planned
	// with o's values as parameters, so it is always an index lookup.
	// Without it the planner turns the probes into anti-joins and, when
	// statistics are missing or stale (a new table, a sudden backlog), may
	// materialise all pending operations and compare every pair: 4 to 12 s
	// for one claim among 55,000 pending operations, against 0.33 s with the
	// fence (1 ms once the table is analysed).
	fence := ""
	if dialect == DialectPostgres {
		fence = " OFFSET 0"
	}
	earlier := func(cond string) string {
		return " AND NOT EXISTS (SELECT 1 FROM litellm_outbox e WHERE e.status = 'pending' AND " + cond + " AND e.id < o.id" + fence + ")"
	}
	notBlocked := earlier("e.team_id <> '' AND e.team_id = o.team_id AND e.user_id = ''") +
		earlier("e.team_id <> '' AND e.team_id = o.team_id AND e.user_id = o.user_id") +
		earlier("e.user_id <> '' AND e.user_id = o.user_id AND e.team_id = ''") +
		earlier("o.user_id = '' AND e.team_id <> '' AND e.team_id = o.team_id") +
		earlier("o.team_id = '' AND e.user_id <> '' AND e.user_id = o.user_id")
	// $1 owner, $2 now, $3 lease until, $4 limit.
	claimable := "SELECT o.id FROM litellm_outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= $2" +
		" AND (o.lease_until IS NULL OR o.lease_until <= $2)" + notBlocked + " ORDER BY o.id LIMIT $4"
	const lease = "UPDATE litellm_outbox SET lease_owner = $1, lease_until = $3, attempts = attempts + 1, updated_at = $2"
	// A settled operation is one this owner still holds.
	const held = " WHERE id = $1 AND lease_owner = $2 AND status = 'pending' AND lease_until IS NOT NULL"

	q := &outboxQueries{
		// $1 id, $2 owner, $3 now, $4 due at, $5 error.
		retryLater: "UPDATE litellm_outbox SET lease_until = NULL, next_attempt_at = $4, last_error = $5, updated_at = $3" + held,
		// $1 id, $2 owner, $3 now, $4 cause.
		park: "UPDATE litellm_outbox SET status = 'parked', lease_until = NULL, last_error = $4, updated_at = $3" + held,
		// $1 id, $2 now. Nothing later that supersedes it may be pending or
		// done (RequeueOutbox); that check and the update are one
		// statement. The probe has no index over done operations; it is an
		// operator's action, and done operations are pruned.
		requeue: "UPDATE litellm_outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, lease_owner = '', lease_until = NULL, updated_at = $2" +
			" WHERE id = $1 AND status = 'parked' AND NOT EXISTS (SELECT 1 FROM litellm_outbox l WHERE " + supersedes("l", "litellm_outbox") +
			" AND l.status IN ('pending', 'done')) RETURNING id",
		// $1 id: the latest later pending or done operation that supersedes it.
		supersededBy: "SELECT l.id, l.status FROM litellm_outbox o JOIN litellm_outbox l ON " + supersedes("l", "o") +
			" WHERE o.id = $1 AND l.status IN ('pending', 'done') ORDER BY l.id DESC LIMIT 1",
		// $1 id, $2 superseding id, $3 now.
		supersede: "UPDATE litellm_outbox SET status = 'superseded', superseded_by = $2, updated_at = $3 WHERE id = $1 AND status = 'parked'",
		status:    "SELECT status FROM litellm_outbox WHERE id = $1",
		// $1 status or '', $2 limit.
		list: "SELECT " + outboxCols + " FROM litellm_outbox WHERE ($1 = '' OR status = $1) ORDER BY id DESC LIMIT $2",
		stats: "SELECT coalesce(sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending," +
			" coalesce(sum(CASE WHEN status = 'parked' THEN 1 ELSE 0 END), 0) AS parked FROM litellm_outbox WHERE status <> 'done'",
	}
	// $1 before. A done operation on the subject and aspect of a parked
	// one is kept: it may be what refuses that operation's retry
	// (RequeueOutbox). Keeping the earlier ones too (the exact rule would
	// compare ids) lets the check be a hash anti-join on PostgreSQL and one
	// look-up in a set of keys built once on SQLite, whose planner would
	// otherwise scan the parked operations for each done one (pruning
	// 190,000 done operations with 10,000 parked: 0.4 s, against more than
	// 200 s for the exact rule).
	// The check and the delete are one statement, and no parked operation
	// can appear that a done one supersedes (see outbox.go).
	const prune = "DELETE FROM litellm_outbox WHERE status = 'done' AND updated_at < $1 AND "
	sameAspect := "p.team_id = litellm_outbox.team_id AND p.user_id = litellm_outbox.user_id AND " + aspectOf("p") + " = " + aspectOf("litellm_outbox")
	// key is one text for subject and aspect (SQLite looks a row value up
	// in a list by scanning it). Unit separators keep the parts apart; a
	// clash between ids that contain them would only keep a row.
	key := func(a string) string {
		return a + ".team_id || char(31) || " + a + ".user_id || char(31) || " + aspectOf(a)
	}
	const insert = "INSERT INTO litellm_outbox (kind, team_id, user_id, body, next_attempt_at, created_at, updated_at)"
	if dialect == DialectPostgres {
		q.prune = prune + "NOT EXISTS (SELECT 1 FROM litellm_outbox p WHERE p.status = 'parked' AND " + sameAspect + ")"
		// $1 JSON array of operations, $2 now. Identity values are drawn as
		// the sorted rows are inserted, so ids follow the array's order.
		q.enqueue = insert + " SELECT e.v->>'kind', coalesce(e.v->>'team_id', ''), coalesce(e.v->>'user_id', ''), e.v->>'body', $2, $2, $2" +
			" FROM jsonb_array_elements(CAST($1 AS jsonb)) WITH ORDINALITY AS e(v, n) ORDER BY e.n RETURNING id"
		// Rows another claimer has locked are skipped rather than waited
		// for; a row leased meanwhile fails the re-check of the lease
		// condition that FOR UPDATE makes after the lock. The locked ids go
		// through an array so that the locking query runs exactly once.
		q.claim = "WITH c AS (" + claimable + " FOR UPDATE SKIP LOCKED) " + lease +
			" WHERE id = ANY(ARRAY(SELECT id FROM c)) RETURNING " + outboxCols
		q.byIDs = "SELECT " + outboxCols + " FROM litellm_outbox WHERE id = ANY(CAST($1 AS bigint[])) ORDER BY id"
		// $1 ids, $2 owner, $3 now.
		q.complete = "UPDATE litellm_outbox SET status = 'done', lease_until = NULL, updated_at = $3" +
			" WHERE id = ANY(CAST($1 AS bigint[])) AND lease_owner = $2 AND status = 'pending' AND lease_until IS NOT NULL"
	} else {
		// SQLite has one writer: the statement is atomic on its own.
		q.prune = prune + key("litellm_outbox") + " NOT IN (SELECT " + key("p") + " FROM litellm_outbox p WHERE p.status = 'parked')"
		q.enqueue = insert + " SELECT value->>'kind', coalesce(value->>'team_id', ''), coalesce(value->>'user_id', ''), value->>'body', $2, $2, $2" +
			" FROM json_each($1) WHERE true ORDER BY key RETURNING id"
		q.claim = lease + " WHERE id IN (" + claimable + ") RETURNING " + outboxCols
		q.byIDs = "SELECT " + outboxCols + " FROM litellm_outbox WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id"
		q.complete = "UPDATE litellm_outbox SET status = 'done', lease_until = NULL, updated_at = $3" +
			" WHERE id IN (SELECT value FROM json_each($1)) AND lease_owner = $2 AND status = 'pending' AND lease_until IS NOT NULL"
	}
	return q
}

// outboxAspect maps a kind to the aspect of its subject it sets, named by
// one kind of the aspect (see "supersedes" in outbox.go): a membership, a
// team's alias and parameters, a team's block state. Any other kind
// (user_new) is an aspect of its own.
var outboxAspect = []struct{ kind, aspect string }{
	{"member_delete", "member_add"},
	{"team_update", "team_new"},
	{"team_unblock", "team_block"},
}

// aspectOf is the SQL expression of the aspect of the operation aliased a.
func aspectOf(a string) string {
	e := "CASE " + a + ".kind"
	for _, m := range outboxAspect {
		e += " WHEN '" + m.kind + "' THEN '" + m.aspect + "'"
	}
	return e + " ELSE " + a + ".kind END"
}

// supersedes is the SQL condition "the operation aliased later supersedes
// the one aliased earlier": a later operation on the same subject (team and
// user ids) that sets the same aspect of it.
func supersedes(later, earlier string) string {
	return later + ".team_id = " + earlier + ".team_id AND " + later + ".user_id = " + earlier + ".user_id AND " +
		later + ".id > " + earlier + ".id AND " + aspectOf(later) + " = " + aspectOf(earlier)
}

func (d *dialect) outbox() *outboxQueries { return outboxQ[d.name] }

// int64List encodes an id list parameter (see dialect.list).
func (d *dialect) int64List(ids []int64) any {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if d.name == DialectPostgres {
		return pq.Int64Array(ids)
	}
	b, _ := json.Marshal(ids) // cannot fail for []int64
	return string(b)
}

type outboxRow struct {
	ID            int64  `db:"id"`
	Kind          string `db:"kind"`
	TeamID        string `db:"team_id"`
	UserID        string `db:"user_id"`
	Body          string `db:"body"`
	Status        string `db:"status"`
	Attempts      int    `db:"attempts"`
	NextAttemptAt dbTime `db:"next_attempt_at"`
	LeaseOwner    string `db:"lease_owner"`
	LeaseUntil    dbTime `db:"lease_until"`
	LastError     string `db:"last_error"`
	CreatedAt     dbTime `db:"created_at"`
	UpdatedAt     dbTime `db:"updated_at"`
	SupersededBy  *int64 `db:"superseded_by"`
}

func outboxOps(rows []outboxRow) []OutboxOp {
	out := make([]OutboxOp, len(rows))
	for i, r := range rows {
		out[i] = OutboxOp{
			ID: r.ID, Kind: r.Kind, TeamID: r.TeamID, UserID: r.UserID, Body: json.RawMessage(r.Body),
			Status: r.Status, Attempts: r.Attempts, NextAttemptAt: r.NextAttemptAt.T,
			LeaseOwner: r.LeaseOwner, LeaseUntil: r.LeaseUntil.ptr(), LastError: r.LastError,
			CreatedAt: r.CreatedAt.T, UpdatedAt: r.UpdatedAt.T,
		}
		if r.SupersededBy != nil {
			out[i].SupersededBy = *r.SupersededBy
		}
	}
	return out
}

// outboxInput is one element of the JSON array EnqueueOutbox sends.
type outboxInput struct {
	Kind   string `json:"kind"`
	TeamID string `json:"team_id"`
	UserID string `json:"user_id"`
	Body   string `json:"body"`
}

// EnqueueOutbox: one statement. Only Kind, TeamID, UserID and Body of each
// operation are used; the operations are pending and due at now, and their
// ids (returned in input order) increase in input order, which is the order
// of delivery among conflicting operations.
func (t *sqlTx) EnqueueOutbox(ctx context.Context, ops []OutboxOp, now time.Time) ([]int64, error) {
	if len(ops) == 0 {
		return []int64{}, nil
	}
	in := make([]outboxInput, len(ops))
	for i, op := range ops {
		body := op.Body
		if len(body) == 0 {
			body = json.RawMessage("{}")
		}
		switch {
		case op.Kind == "":
			return nil, fmt.Errorf("store: enqueue outbox: operation %d has no kind", i)
		case op.TeamID == "" && op.UserID == "":
			return nil, fmt.Errorf("store: enqueue outbox: %s operation %d names neither a team nor a user", op.Kind, i)
		case !json.Valid(body):
			return nil, fmt.Errorf("store: enqueue outbox: %s operation %d: body is not JSON", op.Kind, i)
		}
		in[i] = outboxInput{Kind: op.Kind, TeamID: op.TeamID, UserID: op.UserID, Body: string(body)}
	}
	doc, err := jsonText(in)
	if err != nil {
		return nil, fmt.Errorf("store: enqueue outbox: %w", err)
	}
	ids := []int64{}
	if err := t.run.sel(ctx, &ids, t.d.outbox().enqueue, doc, t.d.time(now)); err != nil {
		return nil, wrapErr("enqueue outbox", err)
	}
	slices.Sort(ids) // RETURNING order is unspecified; ids follow input order
	return ids, nil
}

func (s *sqlStore) ClaimOutbox(ctx context.Context, owner string, limit int, now time.Time, lease time.Duration) ([]OutboxOp, error) {
	if owner == "" {
		return nil, errors.New("store: claim outbox: empty owner")
	}
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("store: claim outbox: limit (%d) and lease (%s) must be positive", limit, lease)
	}
	var rows []outboxRow
	err := s.writer().sel(ctx, &rows, s.d.outbox().claim, owner, s.d.time(now), s.d.time(now.Add(lease)), int64(limit))
	if err != nil {
		return nil, wrapErr("claim outbox", err)
	}
	slices.SortFunc(rows, func(a, b outboxRow) int { return cmp.Compare(a.ID, b.ID) })
	return outboxOps(rows), nil
}

func (s *sqlStore) CompleteOutbox(ctx context.Context, owner string, ids []int64, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	list := s.d.int64List(ids)
	res, err := s.writer().exec(ctx, s.d.outbox().complete, list, owner, s.d.time(now))
	if err != nil {
		return wrapErr("complete outbox", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr("complete outbox", err)
	}
	if want := int64(len(slices.Compact(slices.Sorted(slices.Values(ids))))); n < want {
		return fmt.Errorf("store: complete outbox: %d of %d operations are not leased by this owner: %w", want-n, want, ErrConflict)
	}
	return nil
}

func (s *sqlStore) RetryOutboxLater(ctx context.Context, id int64, owner string, now, at time.Time, lastErr string) error {
	return s.settle(ctx, "retry outbox", id, s.d.outbox().retryLater, id, owner, s.d.time(now), s.d.time(at), lastErr)
}

func (s *sqlStore) ParkOutbox(ctx context.Context, id int64, owner string, now time.Time, cause string) error {
	return s.settle(ctx, "park outbox", id, s.d.outbox().park, id, owner, s.d.time(now), cause)
}

// settle runs an update of a claimed operation; no row means the lease is lost.
func (s *sqlStore) settle(ctx context.Context, op string, id int64, query string, args ...any) error {
	res, err := s.writer().exec(ctx, query, args...)
	if err != nil {
		return wrapErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr(op, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s %d: not leased by this owner: %w", op, id, ErrConflict)
	}
	return nil
}

func (s *sqlStore) RequeueOutbox(ctx context.Context, id int64, now time.Time) error {
	var got []int64
	if err := s.writer().sel(ctx, &got, s.d.outbox().requeue, id, s.d.time(now)); err != nil {
		return wrapErr("requeue outbox", err)
	}
	if len(got) > 0 {
		return nil
	}
	var status string
	if err := s.writer().get(ctx, &status, s.d.outbox().status, id); err != nil {
		return wrapErr(fmt.Sprintf("requeue outbox %d", id), err)
	}
	if status != OutboxParked {
		return fmt.Errorf("store: requeue outbox %d: the operation is %s, not parked: %w", id, status, ErrConflict)
	}
	var later []struct {
		ID     int64  `db:"id"`
		Status string `db:"status"`
	}
	if err := s.writer().sel(ctx, &later, s.d.outbox().supersededBy, id); err != nil {
		return wrapErr(fmt.Sprintf("requeue outbox %d", id), err)
	}
	if len(later) == 0 {
		// Requeued or settled by someone else between the two statements.
		return fmt.Errorf("store: requeue outbox %d: the operation changed meanwhile, try again: %w", id, ErrConflict)
	}
	serr := &SupersededError{ID: id, By: later[0].ID, Delivered: later[0].Status == OutboxDone}
	if serr.Delivered {
		// A done operation stays done: the parked one can never be
		// delivered safely again.
		if _, err := s.writer().exec(ctx, s.d.outbox().supersede, id, later[0].ID, s.d.time(now)); err != nil {
			return wrapErr(fmt.Sprintf("requeue outbox %d: mark superseded", id), err)
		}
	}
	return serr
}

func (s *sqlStore) ListOutbox(ctx context.Context, f OutboxFilter) ([]OutboxOp, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var rows []outboxRow
	if err := s.reader().sel(ctx, &rows, s.d.outbox().list, f.Status, int64(limit)); err != nil {
		return nil, wrapErr("list outbox", err)
	}
	return outboxOps(rows), nil
}

func (s *sqlStore) OutboxOps(ctx context.Context, ids []int64) ([]OutboxOp, error) {
	if len(ids) == 0 {
		return []OutboxOp{}, nil
	}
	var rows []outboxRow
	if err := s.reader().sel(ctx, &rows, s.d.outbox().byIDs, s.d.int64List(ids)); err != nil {
		return nil, wrapErr("outbox operations", err)
	}
	return outboxOps(rows), nil
}

func (s *sqlStore) OutboxStats(ctx context.Context) (pending, parked int, err error) {
	var row struct {
		Pending int64 `db:"pending"`
		Parked  int64 `db:"parked"`
	}
	if err := s.reader().get(ctx, &row, s.d.outbox().stats); err != nil {
		return 0, 0, wrapErr("outbox stats", err)
	}
	return int(row.Pending), int(row.Parked), nil
}

func (s *sqlStore) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.writer().exec(ctx, s.d.outbox().prune, s.d.time(before))
	if err != nil {
		return 0, wrapErr("prune outbox", err)
	}
	n, err := res.RowsAffected()
	return n, wrapErr("prune outbox", err)
}

var _ OutboxStore = (*sqlStore)(nil)
