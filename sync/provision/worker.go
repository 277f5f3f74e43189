package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/teamgate/teamgate/sync/litellm"
	"github.com/teamgate/teamgate/sync/store"
)

// Client delivers one operation; *litellm.Client satisfies it. nil means
// done; an error wrapping litellm.ErrTransient (or any error that is not a
// *litellm.PermanentError) means try again later; a *litellm.PermanentError
// means LiteLLM refused it for good.
type Client interface {
	Apply(ctx context.Context, op litellm.Op) error
}

// Defaults of the Worker's tuning fields.
const (
	DefaultPollInterval = time.Second
	DefaultBatchSize    = 32
	DefaultConcurrency  = 8
	DefaultLease        = 2 * time.Minute
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultDrainTimeout = 10 * time.Second
	DefaultKeepDone     = 7 * 24 * time.Hour
)

// Worker drains the outbox. Set the exported fields, then call Run (or
// RunOnce / Drain in tests); the zero values of the tuning fields mean the
// defaults above. Methods are safe for concurrent use once running.
type Worker struct {
	Store  store.OutboxStore
	Client Client
	Logger *slog.Logger
	// Owner names this worker in leases; it must differ between replicas.
	// Default: host name, process id and a random suffix.
	Owner string
	Clock func() time.Time

	PollInterval time.Duration // how often to look for due operations when idle
	BatchSize    int           // operations claimed at once
	Concurrency  int           // deliveries in flight at once
	// Lease bounds how long a claimed operation stays with this worker; a
	// worker that dies releases its operations when their leases end. It
	// must exceed the client's worst-case Apply time.
	Lease      time.Duration
	MinBackoff time.Duration // the first retry's delay
	MaxBackoff time.Duration // the ceiling of every retry's delay (Retry-After included)
	// DrainTimeout is how long deliveries in flight may go on after Run's
	// context ends; what is still undelivered then stays in the outbox.
	DrainTimeout time.Duration
	KeepDone     time.Duration // delivered operations are deleted after this
	// Jitter maps a backoff step d to the actual delay; default: a random
	// value in [d/2, d] ("equal jitter"), so replicas that failed together
	// do not retry in lockstep.
	Jitter func(d time.Duration) time.Duration
	// Observer, when set, is told the outcome of every delivery attempt
	// (metrics). It is called from the delivering goroutines, so it must be
	// safe for concurrent use, and it must not block.
	Observer func(Delivery)

	once      sync.Once
	wake      chan struct{}
	mu        sync.Mutex
	progress  chan struct{} // closed (and replaced) whenever operations were settled
	lastPrune time.Time
}

func (w *Worker) init() {
	w.once.Do(func() {
		if w.Logger == nil {
			w.Logger = slog.New(slog.DiscardHandler)
		}
		w.Logger = w.Logger.With("component", "provision")
		if w.Owner == "" {
			w.Owner = defaultOwner()
		}
		if w.Clock == nil {
			w.Clock = time.Now
		}
		w.PollInterval = orDefault(w.PollInterval, DefaultPollInterval)
		w.Lease = orDefault(w.Lease, DefaultLease)
		w.MinBackoff = orDefault(w.MinBackoff, DefaultMinBackoff)
		w.MaxBackoff = orDefault(w.MaxBackoff, DefaultMaxBackoff)
		w.DrainTimeout = orDefault(w.DrainTimeout, DefaultDrainTimeout)
		w.KeepDone = orDefault(w.KeepDone, DefaultKeepDone)
		w.BatchSize = orDefault(w.BatchSize, DefaultBatchSize)
		w.Concurrency = orDefault(w.Concurrency, DefaultConcurrency)
		if w.Jitter == nil {
			w.Jitter = equalJitter
		}
		w.wake = make(chan struct{}, 1)
		w.progress = make(chan struct{})
	})
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func defaultOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Delivery outcomes, as Delivery.Outcome.
const (
	DeliveryOK     = "ok"     // LiteLLM accepted the operation (or already had it)
	DeliveryRetry  = "retry"  // it failed for now and is retried later (shutdown cuts included)
	DeliveryParked = "parked" // LiteLLM refused it for good; it waits for an operator
)

// Delivery is one delivery attempt, as told to Worker.Observer.
type Delivery struct {
	Kind     string // the operation's kind (litellm.Kind*)
	Outcome  string // DeliveryOK, DeliveryRetry or DeliveryParked
	Duration time.Duration
}

// Notify wakes a waiting Run at once (a sign-in just enqueued operations).
func (w *Worker) Notify() {
	w.init()
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Run delivers operations until ctx ends, then lets the deliveries in
// flight finish (up to DrainTimeout) and returns. Store failures are logged
// and retried; Run returns only when ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	w.init()
	if pending, parked, err := w.Store.OutboxStats(ctx); err == nil {
		w.Logger.Info("provisioning worker started", "owner", w.Owner, "pending", pending, "parked", parked)
	}
	failures := 0
	for {
		n, err := w.RunOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := w.PollInterval
		switch {
		case err != nil:
			failures++
			wait = min(w.PollInterval<<min(failures, 5), 30*time.Second)
			w.Logger.Warn("outbox: claiming operations failed", "error", err, "retry_in", wait)
		case n > 0:
			failures = 0
			continue // settling may have unblocked later operations
		default:
			failures = 0
			w.prune(ctx)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-w.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Drain runs RunOnce until no operation is due, and returns how many were
// claimed in all. Tests use it to deliver deterministically.
func (w *Worker) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := w.RunOnce(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// RunOnce claims one batch of due operations, delivers them concurrently (a
// batch never holds two operations that must go in order) and settles each.
// It returns the number claimed. Deliveries outlive ctx by up to
// DrainTimeout, so a shutdown does not cut a request LiteLLM may be
// carrying out.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.init()
	if ctx.Err() != nil {
		return 0, nil
	}
	// The claim itself is not cut by shutdown: a claim cancelled after its
	// UPDATE ran would leave operations leased to a worker that never
	// delivers them, stuck until the lease ends (and out of the final drain).
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	ops, err := w.Store.ClaimOutbox(cctx, w.Owner, w.BatchSize, w.Clock(), w.Lease)
	ccancel()
	if err != nil {
		return 0, err
	}
	if len(ops) == 0 {
		return 0, nil
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(w.DrainTimeout, cancel)
		context.AfterFunc(dctx, func() { t.Stop() })
	})
	defer stop()

	sem := make(chan struct{}, w.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var delivered []int64
	for _, op := range ops {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if w.deliver(dctx, ctx, op) {
				mu.Lock()
				delivered = append(delivered, op.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Successes are recorded together: one commit per batch rather than one
	// per operation (the cost that dominates on PostgreSQL). A crash before
	// this line redelivers them, which is harmless.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	if err := w.Store.CompleteOutbox(sctx, w.Owner, delivered, w.Clock()); errors.Is(err, store.ErrConflict) {
		w.Logger.Warn("outbox: a lease ran out before its delivery was recorded; another worker has the operation", "error", err)
	} else if err != nil {
		w.Logger.Error("outbox: recording deliveries failed; they are redone when their leases end", "error", err, "count", len(delivered))
	}
	w.signalProgress()
	return len(ops), nil
}

// deliver applies one operation and records a failure's outcome; it
// reports success, which RunOnce records for the whole batch. Outcomes are
// written even when ctx has ended, so a finished delivery is not redone.
func (w *Worker) deliver(dctx, ctx context.Context, op store.OutboxOp) (ok bool) {
	log := w.Logger.With("op_id", op.ID, "kind", op.Kind, "team_id", op.TeamID, "user_id", op.UserID, "attempt", op.Attempts)
	// A delivery never outlives its lease, so no other worker can be
	// delivering the same operation at the same time.
	actx, acancel := context.WithTimeout(dctx, w.Lease-w.Lease/4)
	start := time.Now()
	err := w.Client.Apply(actx, litellm.Op{Kind: op.Kind, TeamID: op.TeamID, UserID: op.UserID, Body: op.Body})
	acancel()
	took := time.Since(start)
	outcome := DeliveryRetry
	if w.Observer != nil {
		defer func() { w.Observer(Delivery{Kind: op.Kind, Outcome: outcome, Duration: took}) }()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := w.Clock()
	var perm *litellm.PermanentError
	var serr error
	switch {
	case err == nil:
		outcome = DeliveryOK
		log.Debug("outbox: delivered")
		return true
	case errors.As(err, &perm) && perm.Status == http.StatusUnauthorized:
		// A rejected master key would otherwise park every operation and
		// leave an operator to retry each one: it is a configuration error,
		// so wait for it to be fixed (usually with a restart) instead.
		delay := w.backoff(op.Attempts, err)
		serr = w.Store.RetryOutboxLater(sctx, op.ID, w.Owner, now, now.Add(delay), err.Error())
		log.Error("outbox: LiteLLM rejected the master key; fix litellm.master_key, the operation is retried", "error", err, "retry_in", delay)
	case errors.As(err, &perm):
		outcome = DeliveryParked
		serr = w.Store.ParkOutbox(sctx, op.ID, w.Owner, now, err.Error())
		log.Error("outbox: LiteLLM refused the operation; parked until retried from the admin API",
			"status", perm.Status, "error", err)
	case ctx.Err() != nil && dctx.Err() != nil:
		// Cut by shutdown: due again at once, for the next worker.
		serr = w.Store.RetryOutboxLater(sctx, op.ID, w.Owner, now, now, "interrupted by shutdown: "+err.Error())
		log.Info("outbox: delivery interrupted by shutdown", "error", err)
	default:
		delay := w.backoff(op.Attempts, err)
		serr = w.Store.RetryOutboxLater(sctx, op.ID, w.Owner, now, now.Add(delay), err.Error())
		log.Warn("outbox: delivery failed; will retry", "error", err, "retry_in", delay)
	}
	if errors.Is(serr, store.ErrConflict) {
		log.Warn("outbox: lease lost before the outcome was recorded; another worker has the operation", "error", serr)
	} else if serr != nil {
		log.Error("outbox: recording the outcome failed; the operation will be retried when its lease ends", "error", serr)
	}
	return false
}

// backoff is the delay before the next attempt after attempts failed ones:
// MinBackoff doubled per attempt, jittered, at least LiteLLM's Retry-After,
// and at most MaxBackoff.
func (w *Worker) backoff(attempts int, err error) time.Duration {
	d := w.MinBackoff << min(max(attempts-1, 0), 20)
	if d <= 0 || d > w.MaxBackoff {
		d = w.MaxBackoff
	}
	d = w.Jitter(d)
	if ra, ok := litellm.RetryAfter(err); ok && ra > d {
		d = ra
	}
	return min(d, w.MaxBackoff)
}

func equalJitter(d time.Duration) time.Duration {
	return d/2 + mrand.N(d/2+1)
}

// prune deletes delivered operations older than KeepDone, at most hourly.
func (w *Worker) prune(ctx context.Context) {
	now := w.Clock()
	w.mu.Lock()
	due := now.Sub(w.lastPrune) >= time.Hour
	if due {
		w.lastPrune = now
	}
	w.mu.Unlock()
	if !due {
		return
	}
	if n, err := w.Store.PruneOutbox(ctx, now.Add(-w.KeepDone)); err != nil {
		w.Logger.Warn("outbox: pruning delivered operations failed", "error", err)
	} else if n > 0 {
		w.Logger.Debug("outbox: pruned delivered operations", "count", n)
	}
}

func (w *Worker) signalProgress() {
	w.mu.Lock()
	close(w.progress)
	w.progress = make(chan struct{})
	w.mu.Unlock()
}

func (w *Worker) progressed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.progress
}
