package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// testOutboxPruneAndRetryAcrossReplicas: replicas pruning the outbox while
// an operator's retries of superseded parked operations reach other
// replicas. Whatever the interleaving, no retry goes through: each is
// refused as superseded (or as no longer parked, once another replica's
// refusal settled it), and every parked operation ends superseded.
func testOutboxPruneAndRetryAcrossReplicas(t *testing.T, newReplicas func(t *testing.T, n int) []store.Store) {
	rs := newReplicas(t, 3)
	s := rs[0]
	const n = 20
	adds, dels, others := make([]store.OutboxOp, n), make([]store.OutboxOp, n), make([]store.OutboxOp, n)
	for i := range n {
		adds[i] = op("member_add", "t1", fmt.Sprintf("u%d", i))
		dels[i] = op("member_delete", "t1", fmt.Sprintf("u%d", i))
		others[i] = op("team_new", fmt.Sprintf("x%d", i), "")
	}
	parked := enqueue(t, s, at(0), adds...)
	parkAll(t, s, at(0), parked...)
	deliver(t, s, at(time.Second), enqueue(t, s, at(time.Second), append(dels, others...)...)...)

	var wg sync.WaitGroup
	errs := make(chan error, len(rs)*2*n)
	for ri, r := range rs {
		wg.Go(func() {
			for k, id := range parked {
				if k%5 == ri { // prunes interleaved with the retries
					if _, err := r.PruneOutbox(t.Context(), at(time.Hour)); err != nil {
						errs <- fmt.Errorf("replica %d: PruneOutbox: %w", ri, err)
					}
				}
				var se *store.SupersededError
				switch err := r.RequeueOutbox(t.Context(), id, at(8*24*time.Hour)); {
				case err == nil:
					errs <- fmt.Errorf("replica %d: RequeueOutbox(%d) went through: the user is added back", ri, id)
				case errors.As(err, &se) && se.Delivered:
				case errors.Is(err, store.ErrConflict) && !errors.As(err, &se):
					// Already superseded by another replica's refusal.
				default:
					errs <- fmt.Errorf("replica %d: RequeueOutbox(%d): %w", ri, id, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, o := range listOutbox(t, s, "") {
		if o.Kind == "member_add" && o.Status != store.OutboxSuperseded {
			t.Errorf("op %d (member_add %s): status %s, want superseded", o.ID, o.UserID, o.Status)
		}
	}
	// Nothing is parked any more: the next prune takes every done op.
	if _, err := s.PruneOutbox(t.Context(), at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if done := listOutbox(t, s, store.OutboxDone); len(done) != 0 {
		t.Errorf("done after the last prune: %v", opIDs(done))
	}
}
