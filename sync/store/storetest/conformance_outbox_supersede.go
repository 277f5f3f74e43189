package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// parkOp claims the due operations and parks id (completing none).
func parkOp(t *testing.T, s store.Store, now time.Time, id int64) {
	t.Helper()
	claim(t, s, "w1", 100, now)
	if err := s.ParkOutbox(t.Context(), id, "w1", now, "litellm: 422"); err != nil {
		t.Fatalf("ParkOutbox(%d): %v", id, err)
	}
}

// deliver claims the due operations and completes ids.
func deliver(t *testing.T, s store.Store, now time.Time, ids ...int64) {
	t.Helper()
	claim(t, s, "w1", 100, now)
	complete(t, s, "w1", now, ids...)
}

func wantSuperseded(t *testing.T, what string, err error, id, by int64, delivered bool) {
	t.Helper()
	var se *store.SupersededError
	if !errors.As(err, &se) || se.ID != id || se.By != by || se.Delivered != delivered || !errors.Is(err, store.ErrConflict) {
		t.Errorf("%s: RequeueOutbox(%d) = %v; want superseded by %d (delivered %v), wrapping ErrConflict", what, id, err, by, delivered)
	}
}

func outboxStatus(t *testing.T, s store.Store, id int64) store.OutboxOp {
	t.Helper()
	ops, err := s.OutboxOps(t.Context(), []int64{id})
	if err != nil || len(ops) != 1 {
		t.Fatalf("OutboxOps(%d) = %v, %v", id, ops, err)
	}
	return ops[0]
}

// testOutboxRequeueSuperseded: retrying a parked operation must never
// resurrect a change a later operation on the same subject has replaced.
func testOutboxRequeueSuperseded(t *testing.T, s store.Store) {
	// A parked member_add followed by a delivered member_delete of the same
	// team and user (the user left the group): the retry is refused, and the
	// operation is set aside for good.
	ids := enqueue(t, s, at(0), op("member_add", "t1", "u1"))
	parkOp(t, s, at(time.Second), ids[0])
	later := enqueue(t, s, at(2*time.Second), op("member_delete", "t1", "u1"), op("member_delete", "t1", "u1"))
	deliver(t, s, at(2*time.Second), later[0])
	deliver(t, s, at(3*time.Second), later[1])
	if _, k, _ := s.OutboxStats(t.Context()); k != 1 {
		t.Fatalf("parked before the retry = %d, want 1", k)
	}
	wantSuperseded(t, "member_add after member_delete", s.RequeueOutbox(t.Context(), ids[0], at(4*time.Second)), ids[0], later[1], true)
	got := outboxStatus(t, s, ids[0])
	if got.Status != store.OutboxSuperseded || got.SupersededBy != later[1] || got.LastError != "litellm: 422" || !got.UpdatedAt.Equal(at(4*time.Second)) {
		t.Errorf("after the refused retry: status %s, superseded by %d, last error %q, updated %s", got.Status, got.SupersededBy, got.LastError, got.UpdatedAt)
	}
	if p, k, err := s.OutboxStats(t.Context()); err != nil || p != 0 || k != 0 {
		t.Errorf("OutboxStats = %d pending, %d parked, %v; a superseded op is neither", p, k, err)
	}
	if l := listOutbox(t, s, store.OutboxSuperseded); len(l) != 1 || l[0].ID != ids[0] {
		t.Errorf("ListOutbox(superseded) = %v", opIDs(l))
	}
	if l := listOutbox(t, s, store.OutboxParked); len(l) != 0 {
		t.Errorf("ListOutbox(parked) = %v, want none", opIDs(l))
	}
	wantErrIs(t, "requeue a superseded op", s.RequeueOutbox(t.Context(), ids[0], at(5*time.Second)), store.ErrConflict)
	if got := outboxStatus(t, s, ids[0]); got.Status != store.OutboxSuperseded {
		t.Errorf("status after a second retry = %s", got.Status)
	}

	// Team-level: a parked rename, then a later rename still queued. The
	// retry is refused while it waits, but the op stays parked; once the
	// later one parks in turn, the retry goes through, ahead of it.
	ids = enqueue(t, s, at(10*time.Second), op("team_update", "t2", ""))
	parkOp(t, s, at(10*time.Second), ids[0])
	later = enqueue(t, s, at(11*time.Second), op("team_update", "t2", ""))
	wantSuperseded(t, "team_update behind a queued team_update", s.RequeueOutbox(t.Context(), ids[0], at(11*time.Second)), ids[0], later[0], false)
	if got := outboxStatus(t, s, ids[0]); got.Status != store.OutboxParked || got.SupersededBy != 0 {
		t.Errorf("behind a queued op: status %s, superseded by %d; want parked", got.Status, got.SupersededBy)
	}
	parkOp(t, s, at(12*time.Second), later[0])
	if err := s.RequeueOutbox(t.Context(), ids[0], at(13*time.Second)); err != nil {
		t.Fatalf("RequeueOutbox once the later op parked: %v", err)
	}
	wantClaimed(t, "requeued", claim(t, s, "w1", 10, at(13*time.Second)), ids)
	complete(t, s, "w1", at(13*time.Second), ids[0])

	// block/unblock and user_new follow the same rule.
	ids = enqueue(t, s, at(20*time.Second), op("team_block", "t3", ""), op("user_new", "", "u3"))
	claim(t, s, "w1", 10, at(20*time.Second))
	for _, id := range ids {
		if err := s.ParkOutbox(t.Context(), id, "w1", at(20*time.Second), "litellm: 400"); err != nil {
			t.Fatal(err)
		}
	}
	later = enqueue(t, s, at(21*time.Second), op("team_unblock", "t3", ""), op("user_new", "", "u3"))
	deliver(t, s, at(21*time.Second), later...)
	wantSuperseded(t, "team_block after team_unblock", s.RequeueOutbox(t.Context(), ids[0], at(22*time.Second)), ids[0], later[0], true)
	wantSuperseded(t, "user_new after user_new", s.RequeueOutbox(t.Context(), ids[1], at(22*time.Second)), ids[1], later[1], true)

	// Later operations on other subjects do not count: other users of the
	// team, the team itself, the user itself, and earlier operations.
	ids = enqueue(t, s, at(30*time.Second), op("member_delete", "t4", "u4"), op("member_add", "t4", "u4"))
	deliver(t, s, at(30*time.Second), ids[0])
	parkOp(t, s, at(30*time.Second), ids[1])
	later = enqueue(t, s, at(31*time.Second), op("member_add", "t4", "u5"), op("team_update", "t4", ""), op("user_new", "", "u4"), op("member_delete", "t5", "u4"))
	for _, id := range later { // each waits for the one before it
		deliver(t, s, at(31*time.Second), id)
	}
	if err := s.RequeueOutbox(t.Context(), ids[1], at(32*time.Second)); err != nil {
		t.Errorf("RequeueOutbox with later ops on other subjects only: %v", err)
	}
	if got := outboxStatus(t, s, ids[1]); got.Status != store.OutboxPending {
		t.Errorf("status = %s, want pending", got.Status)
	}
}
