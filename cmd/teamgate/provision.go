package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/teamgate/teamgate/sync/litellm"
	"github.com/teamgate/teamgate/sync/provision"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/teamsync"
)

// provisioner wires LiteLLM provisioning: the reconcile enqueues operations
// (teamsync.WithProvisioning), the worker delivers them, and sign-in wakes
// the worker (and waits for it with litellm.wait_on_sign_in).
type provisioner struct {
	cfg    provision.Config
	url    string // litellm.url, else upstream.url
	client *litellm.Client
	worker *provision.Worker
	log    *slog.Logger

	done chan struct{} // closed when the running worker has stopped
}

// finalDrain bounds the last delivery pass at shutdown.
const finalDrain = 5 * time.Second

// newProvisioner returns nil when provisioning is off.
func newProvisioner(cfg Config, st store.Store, log *slog.Logger, opts appOptions) (*provisioner, error) {
	if !cfg.LiteLLM.Enabled() {
		return nil, nil
	}
	p := &provisioner{cfg: cfg.LiteLLM, url: litellmURL(cfg), log: log.With("component", "provision")}
	var err error
	if p.client, err = litellm.New(p.url, cfg.LiteLLM.MasterKey, litellm.WithLogger(log)); err != nil {
		return nil, fmt.Errorf("litellm.url: %w", err)
	}
	p.worker = &provision.Worker{Store: st, Client: p.client, Logger: log, Clock: opts.provisionClock}
	return p, nil
}

// litellmURL is litellm.url, defaulting to upstream.url.
func litellmURL(cfg Config) string {
	if cfg.LiteLLM.URL != "" {
		return cfg.LiteLLM.URL
	}
	return cfg.Upstream.URL
}

// reconcileOptions turns the reconcile's outbox writes on.
func (p *provisioner) reconcileOptions() []teamsync.Option {
	if p == nil {
		return nil
	}
	return []teamsync.Option{teamsync.WithProvisioning(teamsync.Provisioning{
		Enabled: true, BlockUnassignedTeams: p.cfg.BlockUnassignedTeams,
	})}
}

// afterSync runs after a successful sign-in reconcile: it wakes the worker,
// and with wait_on_sign_in waits (bounded) until LiteLLM has the changes.
// Sign-in goes on whatever happens: LiteLLM being down must not lock users
// out, and the outbox delivers later.
func (p *provisioner) afterSync(ctx context.Context, res teamsync.Result) {
	if len(res.OutboxIDs) == 0 {
		return
	}
	p.worker.Notify()
	if !p.cfg.WaitOnSignIn {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, p.cfg.WaitTimeout)
	defer cancel()
	if err := p.worker.WaitFor(wctx, res.OutboxIDs); err != nil {
		level := slog.LevelWarn
		var pe *provision.ParkedError
		if errors.As(err, &pe) {
			level = slog.LevelError
		}
		p.log.Log(ctx, level, "sign-in continues before LiteLLM has the user's changes",
			"user_id", res.User.ID, "operations", len(res.OutboxIDs), "error", err)
	}
}

// start runs the worker until ctx ends.
func (p *provisioner) start(ctx context.Context) {
	if p == nil {
		return
	}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		_ = p.worker.Run(ctx)
	}()
}

// stop waits for the worker started by start to finish its deliveries in
// flight, then makes one last bounded pass so that operations the final
// sign-ins enqueued reach LiteLLM before the process exits.
func (p *provisioner) stop(ctx context.Context) {
	if p == nil || p.done == nil {
		return
	}
	<-p.done
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalDrain)
	defer cancel()
	if n, err := p.worker.Drain(dctx); err != nil {
		p.log.Warn("outbox: last delivery pass at shutdown failed; the operations stay in the outbox", "error", err)
	} else if n > 0 {
		p.log.Info("outbox: delivered operations at shutdown", "count", n)
	}
}

// checkLiteLLM is `teamgate check`'s master-key check; none when
// provisioning is off.
func checkLiteLLM(ctx context.Context, cfg Config) []checkResult {
	if !cfg.LiteLLM.Enabled() {
		return nil
	}
	r := checkResult{name: "LiteLLM master key"}
	c, err := litellm.New(litellmURL(cfg), cfg.LiteLLM.MasterKey)
	if err != nil {
		r.err, r.fix = err, "check litellm.url"
		return []checkResult{r}
	}
	switch err := c.CheckMasterKey(ctx); {
	case err == nil:
		r.detail = "accepted by " + litellmURL(cfg)
	case errors.Is(err, litellm.ErrUnauthorized):
		r.err, r.fix = err, "set litellm.master_key to LiteLLM's master key (general_settings.master_key or LITELLM_MASTER_KEY)"
	default:
		r.err, r.fix = err, "make sure LiteLLM runs and is reachable at litellm.url (default: upstream.url)"
	}
	return []checkResult{r}
}
