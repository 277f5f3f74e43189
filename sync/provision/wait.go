package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// ParkedError is WaitFor's answer when LiteLLM refused one of the operations.
type ParkedError struct {
	ID    int64
	Kind  string
	Cause string // the parked operation's last error
}

func (e *ParkedError) Error() string {
	return fmt.Sprintf("provision: LiteLLM refused %s operation %d: %s", e.Kind, e.ID, e.Cause)
}

// WaitFor returns nil once every operation among ids was delivered (one no
// longer in the outbox was delivered and pruned), a *ParkedError as soon as
// one is parked, or ctx's error (also when ctx ends during a read). It wakes the worker first, then re-checks
// whenever this worker settles a batch, and every PollInterval for
// operations another replica delivers.
func (w *Worker) WaitFor(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	w.init()
	w.Notify()
	for {
		progressed := w.progressed() // before reading, so no settlement is missed
		ops, err := w.Store.OutboxOps(ctx, ids)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				// The wait ran out during the read: the driver reports a
				// cancelled statement, but the cause is the deadline.
				return fmt.Errorf("provision: wait for operations: %w (%v)", cerr, err)
			}
			return fmt.Errorf("provision: wait for operations: %w", err)
		}
		pending := 0
		for _, op := range ops {
			switch op.Status {
			case store.OutboxParked:
				return &ParkedError{ID: op.ID, Kind: op.Kind, Cause: op.LastError}
			case store.OutboxPending:
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		t := time.NewTimer(w.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-progressed:
		case <-t.C:
		}
		t.Stop()
	}
}
