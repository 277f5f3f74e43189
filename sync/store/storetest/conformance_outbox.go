package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

var outboxTests = []namedTest{
	{"EnqueueRoundTripInInputOrder", testOutboxEnqueueRoundTrip},
	{"EnqueueRejectsBadOperations", testOutboxEnqueueInvalid},
	{"EnqueueRollsBackWithTheTransaction", testOutboxEnqueueRollback},
	{"EnqueueIsOneStatement", testOutboxEnqueueStatements},
	{"ClaimOrdersPerTeamAndUser", testOutboxClaimOrdering},
	{"ClaimRespectsLimitAndDueTime", testOutboxClaimLimitAndDue},
	{"LeaseExpiresAndOldOwnerLosesIt", testOutboxLease},
	{"CompleteABatchWithOneLostLease", testOutboxCompleteBatch},
	{"RetryLaterKeepsBlockingItsKeys", testOutboxRetryLater},
	{"ParkedDoesNotBlockAndCanBeRequeued", testOutboxParkRequeue},
	{"RequeueRefusesASupersededOp", testOutboxRequeueSuperseded},
	{"SupersedeOnlyWithinAnAspect", testOutboxSupersedeSameAspectOnly},
	{"PruneKeepsWhatRefusesARetry", testOutboxPruneKeepsWhatRefusesARetry},
	{"StatsAndPrune", testOutboxStatsPrune},
	{"OutboxOpsByID", testOutboxOpsByID},
}

var outboxConcurrencyTests = []namedTest{
	{"EightClaimersEachOpOnceInOrder", testOutboxConcurrentClaimers},
}

const lease = time.Minute

// op builds an operation; kind says what it is about: team-level kinds have
// no user, user_new no team, member kinds both.
func op(kind, team, user string) store.OutboxOp {
	return store.OutboxOp{Kind: kind, TeamID: team, UserID: user, Body: json.RawMessage(fmt.Sprintf(`{"team_id":%q,"user_id":%q}`, team, user))}
}

func enqueue(t *testing.T, s store.Store, now time.Time, ops ...store.OutboxOp) []int64 {
	t.Helper()
	var ids []int64
	inTx(t, s, func(tx store.Tx) error {
		var err error
		ids, err = tx.EnqueueOutbox(t.Context(), ops, now)
		return err
	})
	if len(ids) != len(ops) {
		t.Fatalf("EnqueueOutbox returned %d ids for %d operations", len(ids), len(ops))
	}
	return ids
}

func claim(t *testing.T, s store.Store, owner string, limit int, now time.Time) []store.OutboxOp {
	t.Helper()
	ops, err := s.ClaimOutbox(t.Context(), owner, limit, now, lease)
	if err != nil {
		t.Fatalf("ClaimOutbox(%s): %v", owner, err)
	}
	return ops
}

func opIDs(ops []store.OutboxOp) []int64 {
	out := make([]int64, len(ops))
	for i, o := range ops {
		out[i] = o.ID
	}
	return out
}

// pick returns ids[i] for each index (1-based, as in the tests' comments).
func pick(ids []int64, idx ...int) []int64 {
	out := make([]int64, len(idx))
	for i, n := range idx {
		out[i] = ids[n-1]
	}
	return out
}

func wantClaimed(t *testing.T, what string, got []store.OutboxOp, want []int64) {
	t.Helper()
	if g := opIDs(got); !slices.Equal(g, want) {
		t.Errorf("%s: claimed %v, want %v", what, g, want)
	}
}

func complete(t *testing.T, s store.Store, owner string, now time.Time, ids ...int64) {
	t.Helper()
	if err := s.CompleteOutbox(t.Context(), owner, ids, now); err != nil {
		t.Fatalf("CompleteOutbox(%v): %v", ids, err)
	}
}

func listOutbox(t *testing.T, s store.Store, status string) []store.OutboxOp {
	t.Helper()
	ops, err := s.ListOutbox(t.Context(), store.OutboxFilter{Status: status, Limit: 1000})
	if err != nil {
		t.Fatalf("ListOutbox(%q): %v", status, err)
	}
	return ops
}

func testOutboxEnqueueRoundTrip(t *testing.T, s store.Store) {
	// Keys deliberately out of sort order: ids must follow the input.
	in := []store.OutboxOp{op("user_new", "", "u9"), op("team_new", "t9", ""), op("team_new", "t1", ""), op("member_add", "t9", "u9")}
	ids := enqueue(t, s, at(0), in...)
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ids %v do not increase in input order", ids)
		}
	}
	got := listOutbox(t, s, "")
	if len(got) != len(in) {
		t.Fatalf("ListOutbox: %d operations, want %d", len(got), len(in))
	}
	slices.Reverse(got) // newest first
	for i, o := range got {
		w := in[i]
		if o.ID != ids[i] || o.Kind != w.Kind || o.TeamID != w.TeamID || o.UserID != w.UserID || string(o.Body) != string(w.Body) ||
			o.Status != store.OutboxPending || o.Attempts != 0 || o.LeaseOwner != "" || o.LeaseUntil != nil || o.LastError != "" {
			t.Errorf("operation %d = %+v, want %+v pending", i, o, w)
		}
		sameTime(t, "NextAttemptAt", o.NextAttemptAt, at(0))
		sameTime(t, "CreatedAt", o.CreatedAt, at(0))
		sameTime(t, "UpdatedAt", o.UpdatedAt, at(0))
	}
	if ops := listOutbox(t, s, store.OutboxParked); len(ops) != 0 {
		t.Errorf("parked = %v, want none", opIDs(ops))
	}
	// An empty body is stored as {}.
	id := enqueue(t, s, at(0), store.OutboxOp{Kind: "team_block", TeamID: "t1"})[0]
	if ops, _ := s.OutboxOps(t.Context(), []int64{id}); len(ops) != 1 || string(ops[0].Body) != "{}" {
		t.Errorf("empty body stored as %+v, want {}", ops)
	}
}

func testOutboxEnqueueInvalid(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		op   store.OutboxOp
		want string
	}{
		{"no kind", store.OutboxOp{TeamID: "t1", Body: json.RawMessage(`{}`)}, "no kind"},
		{"no team and no user", store.OutboxOp{Kind: "team_new", Body: json.RawMessage(`{}`)}, "neither a team nor a user"},
		{"body not JSON", store.OutboxOp{Kind: "team_new", TeamID: "t1", Body: json.RawMessage(`{nope`)}, "not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.InTx(t.Context(), func(tx store.Tx) error {
				_, err := tx.EnqueueOutbox(t.Context(), []store.OutboxOp{op("team_new", "ok", ""), tc.op}, at(0))
				return err
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if ops := listOutbox(t, s, ""); len(ops) != 0 {
		t.Errorf("%d operations stored after failed enqueues", len(ops))
	}
}

func testOutboxEnqueueRollback(t *testing.T, s store.Store) {
	err := s.InTx(t.Context(), func(tx store.Tx) error {
		if _, err := tx.EnqueueOutbox(t.Context(), []store.OutboxOp{op("team_new", "t1", "")}, at(0)); err != nil {
			return err
		}
		return errBoom
	})
	wantErrIs(t, "InTx", err, errBoom)
	if ops := listOutbox(t, s, ""); len(ops) != 0 {
		t.Errorf("%d operations survived the rollback", len(ops))
	}
}

func testOutboxEnqueueStatements(t *testing.T, s store.Store) {
	for _, n := range []int{1, 300} {
		ops := make([]store.OutboxOp, n)
		for i := range ops {
			ops[i] = op("member_add", fmt.Sprintf("t%03d", i), "u1")
		}
		before := s.Stats().Statements
		enqueue(t, s, at(0), ops...)
		if got := s.Stats().Statements - before; got != 3 { // BEGIN, INSERT, COMMIT
			t.Errorf("enqueueing %d operations sent %d statements, want 3", n, got)
		}
	}
	before := s.Stats().Statements
	enqueue(t, s, at(0))
	if got := s.Stats().Statements - before; got != 2 {
		t.Errorf("enqueueing nothing sent %d statements, want 2 (BEGIN, COMMIT)", got)
	}
}

func testOutboxClaimOrdering(t *testing.T, s store.Store) {
	ids := enqueue(t, s, at(0),
		op("user_new", "", "u1"),        // 1
		op("team_new", "t1", ""),        // 2
		op("team_new", "t2", ""),        // 3
		op("member_add", "t1", "u1"),    // 4: after 1 (its user) and 2 (its team)
		op("member_add", "t2", "u1"),    // 5: after 1 and 3; independent of 4
		op("member_delete", "t1", "u1"), // 6: after 4 (the same membership)
		op("user_new", "", "u2"),        // 7
		op("member_add", "t1", "u2"),    // 8: after 2 and 7; independent of 4 and 6
		op("team_block", "t1", ""),      // 9: a team-level op follows everything on t1
	)
	rounds := [][]int{{1, 2, 3, 7}, {4, 5, 8}, {6}, {9}}
	for i, r := range rounds {
		got := claim(t, s, "w1", 100, at(time.Duration(i)*time.Second))
		wantClaimed(t, fmt.Sprintf("round %d", i+1), got, pick(ids, r...))
		// Nothing more while the round is leased, even for another owner.
		if more := claim(t, s, "w2", 100, at(time.Duration(i)*time.Second)); len(more) != 0 {
			t.Errorf("round %d: a second claimer got %v while the round was leased", i+1, opIDs(more))
		}
		for _, o := range got {
			if o.LeaseOwner != "w1" || o.LeaseUntil == nil || o.Attempts != 1 {
				t.Errorf("claimed %d: owner %q lease %v attempts %d", o.ID, o.LeaseOwner, o.LeaseUntil, o.Attempts)
			}
			complete(t, s, "w1", at(time.Duration(i)*time.Second), o.ID)
		}
	}
	if more := claim(t, s, "w1", 100, at(time.Hour)); len(more) != 0 {
		t.Errorf("after all rounds: claimed %v", opIDs(more))
	}
	if done := listOutbox(t, s, store.OutboxDone); len(done) != len(ids) {
		t.Errorf("%d operations done, want %d", len(done), len(ids))
	}
}

func testOutboxClaimLimitAndDue(t *testing.T, s store.Store) {
	ids := enqueue(t, s, at(0), op("team_new", "a", ""), op("team_new", "b", ""), op("team_new", "c", ""))
	later := enqueue(t, s, at(time.Minute), op("team_new", "d", ""))
	if got := claim(t, s, "w1", 5, at(-time.Second)); len(got) != 0 {
		t.Errorf("claimed %v before anything was due", opIDs(got))
	}
	wantClaimed(t, "limit 2", claim(t, s, "w1", 2, at(time.Second)), pick(ids, 1, 2))
	wantClaimed(t, "the rest that is due", claim(t, s, "w1", 5, at(time.Second)), pick(ids, 3))
	wantClaimed(t, "due a minute later", claim(t, s, "w1", 5, at(time.Minute)), later)
	if _, err := s.ClaimOutbox(t.Context(), "", 1, at(0), lease); err == nil {
		t.Error("ClaimOutbox with an empty owner succeeded")
	}
}

func testOutboxLease(t *testing.T, s store.Store) {
	id := enqueue(t, s, at(0), op("team_new", "t1", ""))[0]
	wantClaimed(t, "w1", claim(t, s, "w1", 1, at(0)), []int64{id})
	if got := claim(t, s, "w2", 1, at(lease-time.Microsecond)); len(got) != 0 {
		t.Errorf("w2 claimed %v before the lease expired", opIDs(got))
	}
	got := claim(t, s, "w2", 1, at(lease))
	wantClaimed(t, "w2 after the lease expired", got, []int64{id})
	if len(got) == 1 && (got[0].Attempts != 2 || got[0].LeaseOwner != "w2") {
		t.Errorf("re-claimed: attempts %d owner %q, want 2 and w2", got[0].Attempts, got[0].LeaseOwner)
	}
	wantErrIs(t, "w1 completing a lost lease", s.CompleteOutbox(t.Context(), "w1", []int64{id}, at(lease)), store.ErrConflict)
	wantErrIs(t, "w1 parking a lost lease", s.ParkOutbox(t.Context(), id, "w1", at(lease), "x"), store.ErrConflict)
	wantErrIs(t, "w1 rescheduling a lost lease", s.RetryOutboxLater(t.Context(), id, "w1", at(lease), at(2*lease), "x"), store.ErrConflict)
	complete(t, s, "w2", at(lease), id)
	wantErrIs(t, "completing twice", s.CompleteOutbox(t.Context(), "w2", []int64{id}, at(lease)), store.ErrConflict)
	ops, err := s.OutboxOps(t.Context(), []int64{id})
	if err != nil || len(ops) != 1 || ops[0].Status != store.OutboxDone || ops[0].LeaseUntil != nil {
		t.Fatalf("after completion: %+v, %v", ops, err)
	}
	sameTime(t, "UpdatedAt", ops[0].UpdatedAt, at(lease))
}

func testOutboxRetryLater(t *testing.T, s store.Store) {
	ids := enqueue(t, s, at(0), op("team_new", "t1", ""), op("member_add", "t1", "u1"), op("team_new", "t2", ""))
	wantClaimed(t, "first", claim(t, s, "w1", 10, at(0)), pick(ids, 1, 3))
	if err := s.RetryOutboxLater(t.Context(), ids[0], "w1", at(time.Second), at(time.Minute), "litellm: 503"); err != nil {
		t.Fatalf("RetryOutboxLater: %v", err)
	}
	complete(t, s, "w1", at(time.Second), ids[2])
	// The team_new waits for its retry, and its member_add behind it.
	if got := claim(t, s, "w1", 10, at(time.Minute-time.Microsecond)); len(got) != 0 {
		t.Errorf("claimed %v before the retry was due", opIDs(got))
	}
	got := claim(t, s, "w1", 10, at(time.Minute))
	wantClaimed(t, "at the retry", got, pick(ids, 1))
	if len(got) == 1 && (got[0].Attempts != 2 || got[0].LastError != "litellm: 503") {
		t.Errorf("retried op: attempts %d last error %q", got[0].Attempts, got[0].LastError)
	}
	complete(t, s, "w1", at(time.Minute), ids[0])
	wantClaimed(t, "then the member", claim(t, s, "w1", 10, at(time.Minute)), pick(ids, 2))
}

func testOutboxParkRequeue(t *testing.T, s store.Store) {
	ids := enqueue(t, s, at(0), op("team_new", "t1", ""), op("member_add", "t1", "u1"), op("member_add", "t1", "u2"))
	wantClaimed(t, "first", claim(t, s, "w1", 10, at(0)), pick(ids, 1))
	if err := s.ParkOutbox(t.Context(), ids[0], "w1", at(time.Second), "litellm: 422 team_alias: invalid"); err != nil {
		t.Fatalf("ParkOutbox: %v", err)
	}
	parked := listOutbox(t, s, store.OutboxParked)
	if len(parked) != 1 || parked[0].ID != ids[0] || parked[0].LastError != "litellm: 422 team_alias: invalid" || parked[0].LeaseUntil != nil {
		t.Fatalf("parked = %+v", parked)
	}
	if p, k, err := s.OutboxStats(t.Context()); err != nil || p != 2 || k != 1 {
		t.Errorf("OutboxStats = %d pending, %d parked, %v; want 2, 1", p, k, err)
	}
	// A parked operation does not hold back the later ones of its team.
	wantClaimed(t, "past the parked op", claim(t, s, "w1", 1, at(time.Second)), pick(ids, 2))

	// Requeued, it is due now, with its attempts reset, and comes before
	// the later pending operation of its team.
	if err := s.RequeueOutbox(t.Context(), ids[0], at(2*time.Second)); err != nil {
		t.Fatalf("RequeueOutbox: %v", err)
	}
	complete(t, s, "w1", at(2*time.Second), ids[1])
	got := claim(t, s, "w1", 10, at(2*time.Second))
	wantClaimed(t, "requeued first", got, pick(ids, 1))
	if len(got) == 1 && got[0].Attempts != 1 {
		t.Errorf("requeued op attempts = %d, want 1", got[0].Attempts)
	}
	wantErrIs(t, "requeue a pending op", s.RequeueOutbox(t.Context(), ids[2], at(0)), store.ErrConflict)
	wantErrIs(t, "requeue an unknown op", s.RequeueOutbox(t.Context(), 1<<40, at(0)), store.ErrNotFound)
}

func testOutboxStatsPrune(t *testing.T, s store.Store) {
	if p, k, err := s.OutboxStats(t.Context()); err != nil || p != 0 || k != 0 {
		t.Errorf("empty OutboxStats = %d, %d, %v", p, k, err)
	}
	ids := enqueue(t, s, at(0), op("team_new", "a", ""), op("team_new", "b", ""), op("team_new", "c", ""), op("team_new", "d", ""))
	claim(t, s, "w1", 10, at(0))
	complete(t, s, "w1", at(time.Hour), ids[0])
	complete(t, s, "w1", at(3*time.Hour), ids[1])
	if err := s.ParkOutbox(t.Context(), ids[2], "w1", at(time.Hour), "bad"); err != nil {
		t.Fatal(err)
	}
	if p, k, err := s.OutboxStats(t.Context()); err != nil || p != 1 || k != 1 {
		t.Errorf("OutboxStats = %d pending, %d parked, %v; want 1, 1", p, k, err)
	}
	n, err := s.PruneOutbox(t.Context(), at(2*time.Hour))
	if err != nil || n != 1 {
		t.Errorf("PruneOutbox = %d, %v; want 1 (only the op done before the cut-off)", n, err)
	}
	left := opIDs(listOutbox(t, s, ""))
	if want := []int64{ids[3], ids[2], ids[1]}; !slices.Equal(left, want) {
		t.Errorf("left after pruning = %v, want %v", left, want)
	}
	if ops := listOutbox(t, s, store.OutboxDone); len(ops) != 1 || ops[0].ID != ids[1] {
		t.Errorf("done = %v", opIDs(ops))
	}
	// New operations never reuse a pruned id.
	if id := enqueue(t, s, at(0), op("team_new", "e", ""))[0]; id <= ids[3] {
		t.Errorf("new id %d is not above %d", id, ids[3])
	}
}

func testOutboxOpsByID(t *testing.T, s store.Store) {
	ids := enqueue(t, s, at(0), op("team_new", "a", ""), op("team_new", "b", ""), op("team_new", "c", ""))
	got, err := s.OutboxOps(t.Context(), []int64{ids[2], ids[0], ids[2], 1 << 40})
	if err != nil {
		t.Fatalf("OutboxOps: %v", err)
	}
	if g := opIDs(got); !slices.Equal(g, []int64{ids[0], ids[2]}) {
		t.Errorf("OutboxOps = %v, want %v", g, []int64{ids[0], ids[2]})
	}
	if got, err := s.OutboxOps(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("OutboxOps(nil) = %v, %v", got, err)
	}
}

// A batch completion settles what the owner still holds and reports the rest.
func testOutboxCompleteBatch(t *testing.T, s store.Store) {
	ids := enqueue(t, s, at(0), op("team_new", "a", ""), op("team_new", "b", ""), op("team_new", "c", ""))
	claim(t, s, "w1", 10, at(0))
	// c's lease expires and w2 takes it over.
	complete(t, s, "w1", at(time.Second), ids[0])
	wantClaimed(t, "w2", claim(t, s, "w2", 10, at(lease)), pick(ids, 2, 3))
	complete(t, s, "w2", at(lease), ids[1])
	before := s.Stats().Statements
	err := s.CompleteOutbox(t.Context(), "w2", []int64{ids[2], ids[2], ids[0]}, at(lease))
	wantErrIs(t, "completing one held and one settled op", err, store.ErrConflict)
	if got := s.Stats().Statements - before; got != 1 {
		t.Errorf("CompleteOutbox sent %d statements, want 1", got)
	}
	for _, id := range ids {
		if o, _ := s.OutboxOps(t.Context(), []int64{id}); len(o) != 1 || o[0].Status != store.OutboxDone {
			t.Errorf("op %d: %+v, want done", id, o)
		}
	}
	if err := s.CompleteOutbox(t.Context(), "w2", nil, at(lease)); err != nil {
		t.Errorf("CompleteOutbox(nothing) = %v", err)
	}
}
