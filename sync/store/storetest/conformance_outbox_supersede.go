package storetest

import (
	"errors"
	"slices"
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

// parkAll claims the due operations and parks ids (completing none).
func parkAll(t *testing.T, s store.Store, now time.Time, ids ...int64) {
	t.Helper()
	claim(t, s, "w1", 100, now)
	for _, id := range ids {
		if err := s.ParkOutbox(t.Context(), id, "w1", now, "litellm: 400"); err != nil {
			t.Fatalf("ParkOutbox(%d): %v", id, err)
		}
	}
}

// testOutboxSupersedeSameAspectOnly: only a later operation that sets the
// same thing supersedes a parked one. A block says nothing about a team's
// alias, so a parked rename or creation must stay retryable after it.
func testOutboxSupersedeSameAspectOnly(t *testing.T, s store.Store) {
	// Delivered block and unblock: the parked team_update and team_new
	// are requeued, not superseded.
	ids := enqueue(t, s, at(0), op("team_update", "t1", ""), op("team_new", "t2", ""))
	parkAll(t, s, at(0), ids...)
	later := enqueue(t, s, at(time.Second), op("team_block", "t1", ""), op("team_unblock", "t2", ""))
	deliver(t, s, at(time.Second), later...)
	for i, id := range ids {
		if err := s.RequeueOutbox(t.Context(), id, at(2*time.Second)); err != nil {
			t.Errorf("RequeueOutbox(%d) after a delivered %s: %v", id, []string{"team_block", "team_unblock"}[i], err)
		}
		if got := outboxStatus(t, s, id); got.Status != store.OutboxPending || got.SupersededBy != 0 {
			t.Errorf("op %d: status %s, superseded by %d; want pending", id, got.Status, got.SupersededBy)
		}
	}
	got := claim(t, s, "w1", 10, at(2*time.Second))
	wantClaimed(t, "requeued", got, ids)
	complete(t, s, "w1", at(2*time.Second), opIDs(got)...)

	// Queued later operations: one of another aspect does not refuse the
	// retry (block after a rename, rename after a block), one of the same
	// aspect does (member_add after a parked member_delete).
	ids = enqueue(t, s, at(10*time.Second), op("team_update", "t3", ""), op("team_block", "t4", ""), op("member_delete", "t5", "u5"))
	parkAll(t, s, at(10*time.Second), ids...)
	later = enqueue(t, s, at(11*time.Second), op("team_block", "t3", ""), op("team_update", "t4", ""), op("member_add", "t5", "u5"))
	for _, id := range ids[:2] {
		if err := s.RequeueOutbox(t.Context(), id, at(11*time.Second)); err != nil {
			t.Errorf("RequeueOutbox(%d) behind a queued op of another aspect: %v", id, err)
		}
	}
	wantSuperseded(t, "member_delete behind a queued member_add", s.RequeueOutbox(t.Context(), ids[2], at(11*time.Second)), ids[2], later[2], false)
	if got := outboxStatus(t, s, ids[2]); got.Status != store.OutboxParked {
		t.Errorf("behind a queued member_add: status %s, want parked", got.Status)
	}
	// The requeued ones go ahead of the later operations of their teams.
	got = claim(t, s, "w1", 10, at(11*time.Second))
	wantClaimed(t, "requeued ahead", got, []int64{ids[0], ids[1], later[2]})
	complete(t, s, "w1", at(11*time.Second), opIDs(got)...)
	got = claim(t, s, "w1", 10, at(12*time.Second))
	wantClaimed(t, "then the later ones", got, later[:2])
	complete(t, s, "w1", at(12*time.Second), opIDs(got)...)
	wantSuperseded(t, "member_delete after a delivered member_add", s.RequeueOutbox(t.Context(), ids[2], at(13*time.Second)), ids[2], later[2], true)

	// Within an aspect the kinds mix: a delivered team_update supersedes a
	// parked team_new, and names it even when a block was delivered after.
	ids = enqueue(t, s, at(20*time.Second), op("team_new", "t6", ""))
	parkOp(t, s, at(20*time.Second), ids[0])
	later = enqueue(t, s, at(21*time.Second), op("team_update", "t6", ""), op("team_block", "t6", ""))
	deliver(t, s, at(21*time.Second), later[0])
	deliver(t, s, at(22*time.Second), later[1])
	wantSuperseded(t, "team_new after team_update and team_block", s.RequeueOutbox(t.Context(), ids[0], at(23*time.Second)), ids[0], later[0], true)
}

// testOutboxPruneKeepsWhatRefusesARetry: pruning delivered operations must
// not lift the refusal to retry a parked one they supersede, however long
// the operation waits for an operator.
func testOutboxPruneKeepsWhatRefusesARetry(t *testing.T, s store.Store) {
	ids := enqueue(t, s, at(time.Second), op("member_add", "t1", "u1"), op("team_update", "t2", ""), op("user_new", "", "u3"))
	parkAll(t, s, at(time.Second), ids...)
	later := enqueue(t, s, at(2*time.Second),
		op("member_delete", "t1", "u1"), // supersedes ids[0]
		op("team_block", "t2", ""),      // another aspect than ids[1]
		op("user_new", "", "u3"),        // supersedes ids[2]
		op("team_new", "t9", ""))        // another subject
	deliver(t, s, at(2*time.Second), later...)

	n, err := s.PruneOutbox(t.Context(), at(time.Hour))
	if err != nil || n != 2 {
		t.Errorf("PruneOutbox = %d, %v; want 2 (all done but the two that supersede a parked op)", n, err)
	}
	if done := opIDs(listOutbox(t, s, store.OutboxDone)); !slices.Equal(done, []int64{later[2], later[0]}) {
		t.Errorf("done after pruning = %v, want %v", done, []int64{later[2], later[0]})
	}
	if p, k, err := s.OutboxStats(t.Context()); err != nil || p != 0 || k != 3 {
		t.Errorf("OutboxStats = %d pending, %d parked, %v; want 0, 3", p, k, err)
	}

	// Days later the retries are still refused.
	wantSuperseded(t, "member_add after a pruning", s.RequeueOutbox(t.Context(), ids[0], at(8*24*time.Hour)), ids[0], later[0], true)
	wantSuperseded(t, "user_new after a pruning", s.RequeueOutbox(t.Context(), ids[2], at(8*24*time.Hour)), ids[2], later[2], true)
	if err := s.RequeueOutbox(t.Context(), ids[1], at(8*24*time.Hour)); err != nil {
		t.Errorf("RequeueOutbox(team_update) after the team_block was pruned: %v", err)
	}
	// Once nothing is parked behind them, they go too.
	if n, err := s.PruneOutbox(t.Context(), at(time.Hour)); err != nil || n != 2 {
		t.Errorf("PruneOutbox once the parked ops are superseded = %d, %v; want 2", n, err)
	}
	if sup := opIDs(listOutbox(t, s, store.OutboxSuperseded)); !slices.Equal(sup, []int64{ids[2], ids[0]}) {
		t.Errorf("superseded = %v, want %v", sup, []int64{ids[2], ids[0]})
	}
}
