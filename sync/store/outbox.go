package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// The LiteLLM outbox holds the management-API operations a reconcile
// committed, written in the reconcile's own transaction (Tx.EnqueueOutbox),
// so that nothing is lost when LiteLLM is down, slow or restarting. A worker
// (sync/provision) claims due operations under a lease, delivers them and
// completes, reschedules or parks each.
//
// Ordering. Operations are delivered in order per team and per user: an
// operation is claimable only when no earlier pending operation (leased, due
// or waiting for a retry) conflicts with it. Two operations conflict when
// they share a team id and at least one of them concerns the whole team (no
// user id) or both concern the same user; likewise for a shared user id. So
// team_new(T) precedes every later operation on T, user_new(U) every later
// one on U, and member_add(T,U) precedes member_delete(T,U), while the
// memberships of one user in different teams are independent and go out in
// one batch. A claimed batch therefore never holds two conflicting
// operations, and a worker may deliver a batch concurrently.
//
// Ids follow commit order for conflicting operations: every reconcile that
// enqueues an operation on a team or user holds that row's lock (upsert,
// insert, rename, assignment flag, membership) until it commits, so a later
// conflicting operation gets a larger id and becomes visible after it.
//
// A parked operation does not block later ones: they run and succeed or
// park on their own, each with its own cause (a blocked queue behind one bad
// operation would hide every later change). RequeueOutbox puts a parked
// operation back, ahead of the later operations of its team and user, but
// only while no later operation that supersedes it is queued or delivered:
// such an operation carries a newer state of the same thing (a
// member_delete after a parked member_add of the same team and user, a
// rename after a parked team_update), and delivering the parked one now
// would resurrect the stale change, which no later reconcile repairs.
//
// A later operation supersedes an earlier one when both are on the same
// subject (team id and user id) and set the same aspect of it: a membership
// (member_add, member_delete), a team's alias and parameters (team_new,
// team_update), a team's block state (team_block, team_unblock), or a user
// (user_new). A team_block says nothing about the alias, so it does not
// supersede a parked team_update or team_new.
//
// A delivered operation that supersedes a parked one is not pruned while
// that operation stays parked, so the refusal does not lapse with age. The
// set of parked operations a done one supersedes can only shrink: it was
// claimed only once no earlier operation of its subject was pending, and
// none of those parked is requeued while it exists. So PruneOutbox's check
// and delete, one statement, stay right under concurrent replicas on either
// database.
//
// Delivery is at least once: a worker that outlives its lease may deliver an
// operation another worker delivers again; LiteLLM operations are idempotent
// (duplicates count as success), and leases are much longer than a delivery.

// Outbox operation statuses.
const (
	OutboxPending = "pending"
	OutboxParked  = "parked"
	OutboxDone    = "done"
	// OutboxSuperseded: a parked operation an operator tried to retry after
	// a later operation that supersedes it was delivered (see RequeueOutbox).
	// It is settled like a done one and never delivered.
	OutboxSuperseded = "superseded"
)

// SupersededError is RequeueOutbox's answer for a parked operation that a
// later operation on the same subject supersedes. It wraps ErrConflict.
type SupersededError struct {
	ID int64 // the parked operation
	By int64 // the latest later operation that supersedes it
	// Delivered: By is done, and the operation was marked superseded for
	// good. Otherwise By is still queued; the operation stays parked, and
	// may be retried should By park in turn.
	Delivered bool
}

func (e *SupersededError) Error() string {
	state := "queued"
	if e.Delivered {
		state = "delivered"
	}
	return fmt.Sprintf("store: requeue outbox %d: superseded by operation %d (%s)", e.ID, e.By, state)
}

func (e *SupersededError) Unwrap() error { return ErrConflict }

// OutboxOp is one LiteLLM management-API operation.
type OutboxOp struct {
	ID            int64           `json:"id"`
	Kind          string          `json:"kind"`    // litellm.Kind*
	TeamID        string          `json:"team_id"` // "" when not about a team
	UserID        string          `json:"user_id"` // "" when not about a user
	Body          json.RawMessage `json:"body"`    // the request body
	Status        string          `json:"status"`
	Attempts      int             `json:"attempts"` // claims so far (since the last requeue)
	NextAttemptAt time.Time       `json:"next_attempt_at"`
	LeaseOwner    string          `json:"lease_owner"` // the worker that claimed it last
	LeaseUntil    *time.Time      `json:"lease_until"` // nil: not claimed
	LastError     string          `json:"last_error"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	// SupersededBy is the later operation that superseded this one (status
	// superseded); 0 otherwise.
	SupersededBy int64 `json:"superseded_by,omitempty"`
}

// OutboxFilter selects operations for listing, newest first.
type OutboxFilter struct {
	Status string // "" : every status
	Limit  int    // 0: 100
}

// OutboxStore is the outbox side of Store. Methods that act on a claimed
// operation take the claiming owner and return an error wrapping ErrConflict
// when the operation is no longer leased by it (its lease expired and
// another worker claimed it, or it was already settled).
type OutboxStore interface {
	// ClaimOutbox leases up to limit due, unleased, unblocked (see the
	// ordering rule above) pending operations to owner until now+lease and
	// counts an attempt on each. Concurrent claimers never get the same
	// operation. Operations are returned in id order.
	ClaimOutbox(ctx context.Context, owner string, limit int, now time.Time, lease time.Duration) ([]OutboxOp, error)
	// CompleteOutbox marks delivered operations done, in one statement
	// (a worker settles a whole batch at once: one commit, not one per
	// operation). Those no longer leased by owner are left alone and the
	// error wraps ErrConflict; the others are done all the same.
	CompleteOutbox(ctx context.Context, owner string, ids []int64, now time.Time) error
	// RetryOutboxLater releases the lease and makes the operation due at at.
	RetryOutboxLater(ctx context.Context, id int64, owner string, now, at time.Time, lastErr string) error
	// ParkOutbox sets a permanently failed operation aside with its cause.
	ParkOutbox(ctx context.Context, id int64, owner string, now time.Time, cause string) error
	// RequeueOutbox makes a parked operation pending and due at now, with
	// its attempts reset: ErrNotFound for an unknown id, ErrConflict when
	// the operation is not parked, and a *SupersededError (wrapping
	// ErrConflict) when a later operation that supersedes it (same team id
	// and user id, same aspect; see above) is pending or done. When that
	// later operation is done, the parked one becomes superseded (status
	// OutboxSuperseded, SupersededBy set).
	RequeueOutbox(ctx context.Context, id int64, now time.Time) error
	ListOutbox(ctx context.Context, f OutboxFilter) ([]OutboxOp, error)
	// OutboxOps returns the operations among ids that exist, in id order.
	OutboxOps(ctx context.Context, ids []int64) ([]OutboxOp, error)
	OutboxStats(ctx context.Context) (pending, parked int, err error)
	// PruneOutbox deletes done operations settled before before, except
	// those on the subject and aspect of a parked operation (they may be
	// what refuses its retry; see above). Superseded ones are kept: they
	// are few, and record an operator's refused retry.
	PruneOutbox(ctx context.Context, before time.Time) (int64, error)
}
