package provision_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/litellm"
	"github.com/teamgate/teamgate/sync/litellmfake"
	"github.com/teamgate/teamgate/sync/provision"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

var transient = fmt.Errorf("litellm /team/new: %w: HTTP 503", litellm.ErrTransient)

func TestWorkerDeliversInOrder(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(st)
		ids := e.enqueue(t,
			litellm.UserNew("u1", "u1@example.com", "u1", litellm.UserParams{UserRole: "internal_user"}),
			litellm.TeamNew("t1", "Team 1", litellm.TeamParams{}),
			litellm.MemberAdd("t1", "u1"),
		)
		w := e.worker("w1")
		if n := drain(t, w); n != 3 {
			t.Errorf("Drain claimed %d, want 3", n)
		}
		got := keys(e.client.applied())
		if len(got) != 3 || got[2] != "member_add:t1:u1" {
			t.Errorf("applied %v: the member must come after its user and team", got)
		}
		for _, id := range ids {
			if o := e.op(t, id); o.Status != store.OutboxDone {
				t.Errorf("op %d status %s, want done", id, o.Status)
			}
		}
		if n := drain(t, w); n != 0 || len(e.client.applied()) != 3 {
			t.Errorf("a second Drain claimed %d and applied %d in all", n, len(e.client.applied()))
		}
	})
}

// Transient failures back off exponentially up to MaxBackoff, hold back the
// later operations of the same team, and succeed once LiteLLM answers.
func TestWorkerRetriesWithBackoff(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(st)
		e.client.setAnswer(func(context.Context, litellm.Op) error { return transient })
		ids := e.enqueue(t, litellm.TeamNew("t1", "Team 1", litellm.TeamParams{}), litellm.TeamBlock("t1"))
		w := e.worker("w1")
		w.MaxBackoff = 10 * time.Second
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
			if n := drain(t, w); n != 1 {
				t.Fatalf("attempt %d: claimed %d, want 1 (the block waits for its team)", i+1, n)
			}
			o := e.op(t, ids[0])
			if got := o.NextAttemptAt.Sub(e.clock.now()); got != want || o.Attempts != i+1 || o.Status != store.OutboxPending ||
				!strings.Contains(o.LastError, "HTTP 503") || o.LeaseUntil != nil {
				t.Fatalf("after attempt %d: retry in %s, attempts %d, status %s, error %q, lease %v; want retry in %s",
					i+1, got, o.Attempts, o.Status, o.LastError, o.LeaseUntil, want)
			}
			e.clock.advance(want - time.Millisecond)
			if n := drain(t, w); n != 0 {
				t.Fatalf("claimed %d before the retry was due", n)
			}
			e.clock.advance(time.Millisecond)
		}
		e.client.setAnswer(nil)
		if n := drain(t, w); n != 2 {
			t.Errorf("after recovery claimed %d, want 2", n)
		}
		if got := keys(e.client.applied()); got[len(got)-1] != "team_block:t1:" || len(got) != 8 {
			t.Errorf("applied %v", got)
		}
		if !strings.Contains(e.logs.String(), `"level":"WARN","msg":"outbox: delivery failed; will retry"`) {
			t.Errorf("no warning logged for the failures:\n%s", e.logs)
		}
	})
}

// A permanent refusal parks the operation with its cause, logged at error
// level; later operations of the team are not held back; a requeued
// operation is delivered.
func TestWorkerParksPermanentErrors(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(st)
		refuse := &litellm.PermanentError{Status: 422, Type: "invalid_request_error", Message: "team_alias too long", Path: "/team/new"}
		e.client.setAnswer(func(_ context.Context, op litellm.Op) error {
			if op.Kind == litellm.KindTeamNew {
				return refuse
			}
			return nil
		})
		// The later op is on another subject (a membership of the team): a
		// later team_update, once delivered, would supersede the parked
		// team_new and refuse its retry (store.RequeueOutbox).
		ids := e.enqueue(t, litellm.TeamNew("t1", strings.Repeat("x", 300), litellm.TeamParams{}), litellm.MemberAdd("t1", "u1"))
		w := e.worker("w1")
		drain(t, w)
		parked := e.op(t, ids[0])
		if parked.Status != store.OutboxParked || parked.LastError != refuse.Error() {
			t.Errorf("team_new: status %s, error %q; want parked with %q", parked.Status, parked.LastError, refuse.Error())
		}
		if o := e.op(t, ids[1]); o.Status != store.OutboxDone {
			t.Errorf("member_add behind the parked op: %s, want done", o.Status)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, `"level":"ERROR","msg":"outbox: LiteLLM refused the operation; parked until retried from the admin API"`) ||
			!strings.Contains(logs, "team_alias too long") {
			t.Errorf("the cause is not logged at error level:\n%s", logs)
		}

		var pe *provision.ParkedError
		if err := w.WaitFor(t.Context(), ids); !errors.As(err, &pe) || pe.ID != ids[0] || pe.Cause != refuse.Error() {
			t.Errorf("WaitFor = %v, want a ParkedError for %d", err, ids[0])
		}

		e.client.setAnswer(nil)
		if err := st.RequeueOutbox(t.Context(), ids[0], e.clock.now()); err != nil {
			t.Fatal(err)
		}
		drain(t, w)
		if o := e.op(t, ids[0]); o.Status != store.OutboxDone {
			t.Errorf("requeued op: %s, want done", o.Status)
		}
		if err := w.WaitFor(t.Context(), ids); err != nil {
			t.Errorf("WaitFor after the retry: %v", err)
		}
	})
}

// Retry-After from LiteLLM wins over a shorter backoff step (through the
// real client and the fake LiteLLM).
func TestWorkerHonoursRetryAfter(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(st)
		fake := litellmfake.New("sk-master")
		srv := httptest.NewServer(fake)
		t.Cleanup(srv.Close)
		c, err := litellm.New(srv.URL, "sk-master")
		if err != nil {
			t.Fatal(err)
		}
		w := e.worker("w1")
		w.Client = c
		fake.FailNext("/team/new", 1, 429, "120")
		id := e.enqueue(t, litellm.TeamNew("t1", "Team 1", litellm.TeamParams{}))[0]
		drain(t, w)
		if got := e.op(t, id).NextAttemptAt.Sub(e.clock.now()); got != 120*time.Second {
			t.Errorf("retry in %s, want Retry-After's 120s", got)
		}
		e.clock.advance(120 * time.Second)
		drain(t, w)
		if tm, ok := fake.Team("t1"); !ok || tm.Alias != "Team 1" {
			t.Errorf("team in LiteLLM = %+v, %v", tm, ok)
		}
		if o := e.op(t, id); o.Status != store.OutboxDone || o.Attempts != 2 {
			t.Errorf("op: %s after %d attempts, want done after 2", o.Status, o.Attempts)
		}
	})
}

// A worker that died holding operations releases them when the lease ends;
// a new worker (a restart) delivers them then, not before.
func TestWorkerPicksUpAfterACrash(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(st)
		ids := e.enqueue(t, litellm.TeamNew("t1", "Team 1", litellm.TeamParams{}), litellm.TeamNew("t2", "Team 2", litellm.TeamParams{}))
		if got, err := st.ClaimOutbox(t.Context(), "crashed", 10, e.clock.now(), provision.DefaultLease); err != nil || len(got) != 2 {
			t.Fatalf("claim by the crashed worker: %v, %v", got, err)
		}
		w := e.worker("restarted")
		if n := drain(t, w); n != 0 {
			t.Fatalf("claimed %d while the dead worker's lease held", n)
		}
		e.clock.advance(provision.DefaultLease)
		if n := drain(t, w); n != 2 {
			t.Fatalf("claimed %d after the lease ended, want 2", n)
		}
		for _, id := range ids {
			if o := e.op(t, id); o.Status != store.OutboxDone || o.LeaseOwner != "restarted" {
				t.Errorf("op %d: %s by %s", id, o.Status, o.LeaseOwner)
			}
		}
	})
}

// Notify wakes a running worker at once, and WaitFor returns when the
// operations are delivered; Run stops when its context ends.
func TestWorkerRunNotifyWaitFor(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(st)
		w := e.worker("w1")
		w.PollInterval = time.Hour // only Notify can wake it in time
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()

		for round := range 3 {
			ids := e.enqueue(t, litellm.TeamNew(fmt.Sprintf("t%d", round), "T", litellm.TeamParams{}), litellm.MemberAdd(fmt.Sprintf("t%d", round), "u1"))
			if err := w.WaitFor(t.Context(), ids); err != nil {
				t.Fatalf("round %d: WaitFor: %v", round, err)
			}
			if n := len(e.client.applied()); n != 2*(round+1) {
				t.Fatalf("round %d: %d operations applied, want %d", round, n, 2*(round+1))
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestWaitForTimesOutAndIgnoresUnknownIDs(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(st)
		w := e.worker("w1")
		w.PollInterval = time.Hour
		if err := w.WaitFor(t.Context(), []int64{1 << 40}); err != nil {
			t.Errorf("WaitFor(unknown id) = %v, want nil (a pruned operation was delivered)", err)
		}
		ids := e.enqueue(t, litellm.TeamNew("t1", "T", litellm.TeamParams{}))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond) // nobody runs the worker
		defer cancel()
		if err := w.WaitFor(ctx, ids); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitFor = %v, want the deadline", err)
		}
	})
}

// A wait that runs out while its read of the outbox is blocked answers the
// deadline, not the driver's "statement cancelled" (sign-in logs the cause).
func TestWaitForDeadlineDuringRead(t *testing.T) {
	url := storetest.PostgresURL(t)
	st, err := store.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	e := newEnv(st)
	w := e.worker("w1")
	w.PollInterval = time.Hour
	ids := e.enqueue(t, litellm.TeamNew("t1", "T", litellm.TeamParams{}))

	// Another connection holds the outbox table exclusively: every read of
	// it waits until the lock goes.
	locker, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	tx, err := locker.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), "LOCK TABLE litellm_outbox IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := w.WaitFor(ctx, ids); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor = %v, want the deadline", err)
	}
}

// On shutdown a delivery in flight may finish and is recorded; one that
// outlasts DrainTimeout is cut and left due at once for the next worker.
func TestWorkerShutdown(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		for _, tc := range []struct {
			name       string
			finish     bool // the delivery returns by itself after shutdown began
			wantStatus string
		}{
			{"delivery in flight finishes", true, store.OutboxDone},
			{"delivery cut after the drain timeout", false, store.OutboxPending},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(st)
				started, release := make(chan struct{}), make(chan struct{})
				e.client.setAnswer(func(ctx context.Context, _ litellm.Op) error {
					close(started)
					if tc.finish {
						<-release
						return nil
					}
					<-ctx.Done()
					return fmt.Errorf("litellm: %w: %w", litellm.ErrTransient, ctx.Err())
				})
				id := e.enqueue(t, litellm.TeamNew("t-"+tc.wantStatus, "T", litellm.TeamParams{}))[0]
				w := e.worker("w1")
				w.DrainTimeout = time.Millisecond
				if tc.finish {
					w.DrainTimeout = time.Hour
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- w.Run(ctx) }()
				<-started
				cancel()
				close(release)
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
				o := e.op(t, id)
				if o.Status != tc.wantStatus || o.LeaseUntil != nil {
					t.Errorf("after shutdown: %s, lease %v; want %s and no lease", o.Status, o.LeaseUntil, tc.wantStatus)
				}
				if !tc.finish && (!o.NextAttemptAt.Equal(e.clock.now()) || !strings.Contains(o.LastError, "interrupted by shutdown")) {
					t.Errorf("cut delivery: due %s (now %s), error %q", o.NextAttemptAt, e.clock.now(), o.LastError)
				}
			})
		}
	})
}

// Two workers (two replicas) draining one outbox deliver every operation
// exactly once.
func TestTwoWorkersDeliverEachOnce(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(st)
		var ops []litellm.Op
		for u := range 10 {
			user := fmt.Sprintf("u%d", u)
			ops = append(ops, litellm.UserNew(user, user+"@example.com", user, litellm.UserParams{}))
			for tm := range 6 {
				team := fmt.Sprintf("t%d", tm)
				if u == 0 {
					ops = append(ops, litellm.TeamNew(team, team, litellm.TeamParams{}))
				}
				ops = append(ops, litellm.MemberAdd(team, user))
			}
		}
		e.enqueue(t, ops...)
		var wg sync.WaitGroup
		for _, owner := range []string{"replica-a", "replica-b"} {
			w := e.worker(owner)
			w.BatchSize = 4
			wg.Go(func() {
				for {
					if _, err := w.Drain(t.Context()); err != nil {
						t.Error(err)
						return
					}
					pending, _, err := st.OutboxStats(t.Context())
					if err != nil || pending == 0 {
						return
					}
					runtime.Gosched() // the rest is leased by the other replica
				}
			})
		}
		wg.Wait()
		got := keys(e.client.applied())
		want := keys(ops)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("applied %d operations, want each of %d exactly once:\n got %v\nwant %v", len(got), len(want), got, want)
		}
	})
}

// A rejected master key is a configuration error: the operation is retried
// (logged at error level) rather than parked, so fixing the key is enough.
func TestWorkerRetriesOnRejectedMasterKey(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(st)
		e.client.setAnswer(func(context.Context, litellm.Op) error {
			return &litellm.PermanentError{Status: 401, Type: "auth_error", Message: "Authentication Error", Path: "/team/new"}
		})
		id := e.enqueue(t, litellm.TeamNew("t1", "T", litellm.TeamParams{}))[0]
		w := e.worker("w1")
		drain(t, w)
		if o := e.op(t, id); o.Status != store.OutboxPending || !o.NextAttemptAt.Equal(e.clock.now().Add(time.Second)) {
			t.Errorf("after a 401: %s, due %s; want pending, due in 1s", o.Status, o.NextAttemptAt)
		}
		if !strings.Contains(e.logs.String(), `"level":"ERROR","msg":"outbox: LiteLLM rejected the master key`) {
			t.Errorf("the 401 is not logged at error level:\n%s", e.logs)
		}
		e.client.setAnswer(nil)
		e.clock.advance(time.Second)
		drain(t, w)
		if o := e.op(t, id); o.Status != store.OutboxDone {
			t.Errorf("after the key was fixed: %s, want done", o.Status)
		}
	})
}
