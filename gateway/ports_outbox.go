package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// OutboxAdmin serves the LiteLLM provisioning outbox in the admin API:
// operations teamgate still has to deliver to LiteLLM's management API, and
// those LiteLLM refused (parked), which an operator can retry after fixing
// the cause. cmd/teamgate adapts the store to it.
type OutboxAdmin interface {
	// ListOutbox returns operations newest first; status "" means all.
	ListOutbox(ctx context.Context, status string, limit int) ([]AdminOutboxOp, error)
	// RetryOutbox puts a parked operation back in line: ErrNotFound for an
	// unknown id, ErrNotParked when it is not parked, and a
	// *SupersededError when a later operation that sets the same thing (a
	// membership, a team's alias, its block state, a user) is queued or
	// delivered (retrying would undo it).
	RetryOutbox(ctx context.Context, id int64) error
}

// ErrNotParked is returned by OutboxAdmin.RetryOutbox for an operation that
// is pending or done.
var ErrNotParked = errors.New("gateway: the operation is not parked")

// SupersededError is OutboxAdmin.RetryOutbox's refusal of a parked
// operation that a later operation on its subject supersedes.
type SupersededError struct {
	By        int64 // the later operation
	Delivered bool  // By is delivered and the operation is now marked superseded; else By is queued
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("gateway: superseded by operation %d", e.By)
}

// AdminOutboxOp is one outbox operation in the admin API.
type AdminOutboxOp struct {
	ID            int64           `json:"id"`
	Kind          string          `json:"kind"` // user_new, team_new, team_update, team_block, team_unblock, member_add, member_delete
	TeamID        string          `json:"team_id"`
	UserID        string          `json:"user_id"`
	Status        string          `json:"status"`                  // pending, parked, done or superseded
	SupersededBy  int64           `json:"superseded_by,omitempty"` // the later operation that superseded it
	Attempts      int             `json:"attempts"`
	NextAttemptAt time.Time       `json:"next_attempt_at"`
	LastError     string          `json:"last_error"`
	Body          json.RawMessage `json:"body"` // the management API request body
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
}
