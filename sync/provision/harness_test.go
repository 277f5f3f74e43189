package provision_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/litellm"
	"github.com/teamgate/teamgate/sync/provision"
	"github.com/teamgate/teamgate/sync/store"
)

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// client is a scripted provision.Client: answer decides each outcome (nil:
// success) and every call is recorded.
type client struct {
	mu     sync.Mutex
	answer func(ctx context.Context, op litellm.Op) error
	calls  []litellm.Op
}

func (c *client) Apply(ctx context.Context, op litellm.Op) error {
	c.mu.Lock()
	c.calls = append(c.calls, op)
	answer := c.answer
	c.mu.Unlock()
	if answer == nil {
		return nil
	}
	return answer(ctx, op)
}

func (c *client) applied() []litellm.Op {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]litellm.Op(nil), c.calls...)
}

func (c *client) setAnswer(fn func(ctx context.Context, op litellm.Op) error) {
	c.mu.Lock()
	c.answer = fn
	c.mu.Unlock()
}

// logBuffer collects a worker's JSON log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	st     store.Store
	clock  *clock
	client *client
	logs   *logBuffer
}

func newEnv(st store.Store) *env {
	return &env{st: st, clock: newClock(), client: &client{}, logs: &logBuffer{}}
}

// worker builds a worker with exact (unjittered) backoff.
func (e *env) worker(owner string) *provision.Worker {
	return &provision.Worker{
		Store: e.st, Client: e.client, Owner: owner, Clock: e.clock.now,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Jitter: func(d time.Duration) time.Duration { return d },
	}
}

// enqueue commits ops in one transaction, due now.
func (e *env) enqueue(t *testing.T, ops ...litellm.Op) []int64 {
	t.Helper()
	in := make([]store.OutboxOp, len(ops))
	for i, op := range ops {
		in[i] = store.OutboxOp{Kind: op.Kind, TeamID: op.TeamID, UserID: op.UserID, Body: op.Body}
	}
	var ids []int64
	err := e.st.InTx(t.Context(), func(tx store.Tx) error {
		var err error
		ids, err = tx.EnqueueOutbox(t.Context(), in, e.clock.now())
		return err
	})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return ids
}

func (e *env) op(t *testing.T, id int64) store.OutboxOp {
	t.Helper()
	ops, err := e.st.OutboxOps(t.Context(), []int64{id})
	if err != nil || len(ops) != 1 {
		t.Fatalf("OutboxOps(%d) = %v, %v", id, ops, err)
	}
	return ops[0]
}

func drain(t *testing.T, w *provision.Worker) int {
	t.Helper()
	n, err := w.Drain(t.Context())
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	return n
}

func keys(ops []litellm.Op) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = o.Kind + ":" + o.TeamID + ":" + o.UserID
	}
	return out
}
