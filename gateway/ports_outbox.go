package gateway

import (
	"context"
	"encoding/json"
	"errors"
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
	// unknown id, ErrNotParked when it is not parked.
	RetryOutbox(ctx context.Context, id int64) error
}

// ErrNotParked is returned by OutboxAdmin.RetryOutbox for an operation that
// is pending or done.
var ErrNotParked = errors.New("gateway: the operation is not parked")

// AdminOutboxOp is one outbox operation in the admin API.
type AdminOutboxOp struct {
	ID            int64           `json:"id"`
	Kind          string          `json:"kind"` // user_new, team_new, team_update, team_block, team_unblock, member_add, member_delete
	TeamID        string          `json:"team_id"`
	UserID        string          `json:"user_id"`
	Status        string          `json:"status"` // pending, parked or done
	Attempts      int             `json:"attempts"`
	NextAttemptAt time.Time       `json:"next_attempt_at"`
	LastError     string          `json:"last_error"`
	Body          json.RawMessage `json:"body"` // the management API request body
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
}
