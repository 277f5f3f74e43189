package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/teamsync"
)

func cmdServe(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	cfg, err := configFromFlags("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	logw := newLogWriter(stderr) // closed last, after everything that logs
	defer logw.Close()
	keepHeapHeadroom(ctx, getenv)
	log := newLogger(cfg.Log, logw)
	return runServe(ctx, cfg, log, appOptions{}, nil)
}

// runServe is serve's life cycle: wire the app, serve until ctx ends (ln,
// or server.listen when nil), shut down, close the store.
func runServe(ctx context.Context, cfg Config, log *slog.Logger, opts appOptions, ln net.Listener) error {
	a, err := newApp(ctx, cfg, log, opts)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.serve(ctx, cfg.Server.Listen, ln)
}

func cmdMigrate(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	cfg, err := configFromFlags("migrate", args, getenv, stderr)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stdout, "database %s (%s): migrations applied\n", store.RedactURL(cfg.Database.URL), st.Dialect())
	return nil
}

// configFromFlags parses a command's only flag, --config, and loads that file.
func configFromFlags(name string, args []string, getenv env, stderr io.Writer) (Config, error) {
	fs := newFlagSet(name, name+" [--config FILE]", stderr)
	path := fs.String("config", "config.yaml", "config file")
	if err := parseFlags(fs, args); err != nil {
		return Config{}, err
	}
	return loadConfig(*path, getenv)
}

// appOptions let `teamgate dev` and tests inject their fakes.
type appOptions struct {
	httpClient *http.Client // for Entra and Graph; nil: a default client
	store      store.Store  // an open, migrated store; nil: open database.url
	// openStore replaces openStore for database.url (tests); the app owns
	// and closes what it returns, as it would its own.
	openStore func(ctx context.Context, cfg store.Config) (store.Store, error)
	// provisionClock is the outbox worker's clock (tests); nil: time.Now.
	provisionClock func() time.Time
	// gatewayClock is the gateway's clock for sessions (tests); nil: time.Now.
	gatewayClock func() time.Time
}

// app is one wired teamgate: store, Graph client, reconciler and gateway.
type app struct {
	cfg       Config
	log       *slog.Logger
	store     store.Store
	ownsStore bool
	graph     *graph.Client
	recon     *teamsync.Reconciler
	// background is the background reconciliation; nil when sync.interval is 0.
	background *teamsync.Background
	gateway    *gateway.Gateway
	metrics    *metrics
	prov       *provisioner // nil when LiteLLM provisioning is off
}

func openStore(ctx context.Context, cfg store.Config) (store.Store, error) {
	st, err := store.Open(ctx, cfg.URL, cfg.Options()...)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("database %s: migrate: %w", store.RedactURL(cfg.URL), err)
	}
	return st, nil
}

func newApp(ctx context.Context, cfg Config, log *slog.Logger, opts appOptions) (*app, error) {
	st := opts.store
	if st == nil {
		open := opts.openStore
		if open == nil {
			open = openStore
		}
		var err error
		if st, err = open(ctx, cfg.Database); err != nil {
			return nil, err
		}
	}
	m := newMetrics()
	m.watchStore(st)
	m.watchOutbox(st)
	m.watchSessions(st)
	gc, err := graph.New(graphConfig(cfg.Entra), append(graphOptions(opts, log), graph.WithObserver(m.observeGraph))...)
	if err != nil {
		if opts.store == nil {
			st.Close()
		}
		return nil, err
	}
	prov, err := newProvisioner(cfg, st, log, opts)
	if err != nil {
		if opts.store == nil {
			st.Close()
		}
		return nil, err
	}
	if prov != nil {
		prov.worker.Observer = m.observeDelivery
	}
	recon := teamsync.New(gc, st, cfg.LiteLLMSettings, append([]teamsync.Option{teamsync.WithLogger(log),
		teamsync.WithAdminGroups(cfg.Admin.GroupIDs...)}, prov.reconcileOptions()...)...)
	syncer := &syncAdapter{recon: recon, metrics: m}
	var outbox gateway.OutboxAdmin
	if prov != nil {
		syncer.provisioned = prov.afterSync
		outbox = outboxAdapter{st}
	}
	gw, err := gateway.New(ctx, cfg.Config, gateway.OIDCConfig{
		Issuer:       issuerURL(cfg.Entra),
		ClientID:     cfg.Entra.ClientID,
		ClientSecret: cfg.Entra.ClientSecret,
		HTTPClient:   opts.httpClient,
	}, gateway.Deps{
		Syncer:      syncer,
		Sessions:    sessionAdapter{st},
		Directory:   directoryAdapter{st},
		DB:          st,
		SigningKeys: keyAdapter{st},
		Logger:      log,
		Outbox:      outbox,
		Pages:       pagesAdapter{st},
		Revalidator: revalidatorAdapter{recon, m},
		Now:         opts.gatewayClock,
	})
	if err != nil {
		if opts.store == nil {
			st.Close()
		}
		return nil, err
	}
	syncer.gw = gw
	a := &app{cfg: cfg, log: log, store: st, ownsStore: opts.store == nil, graph: gc, recon: recon, gateway: gw, metrics: m, prov: prov}
	if cfg.Sync.Interval > 0 {
		if a.background, err = teamsync.NewBackground(recon, teamsync.BackgroundConfig{
			Interval: cfg.Sync.Interval, Nested: cfg.Entra.NestedGroups, Workers: cfg.Sync.Workers,
			CreateUsers: cfg.Sync.CreateUsers,
			OnRun:       m.observeBackgroundRun,
		}); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

func graphConfig(e EntraConfig) graph.Config {
	return graph.Config{
		TenantID:           e.TenantID,
		ClientID:           e.ClientID,
		ClientSecret:       e.ClientSecret,
		AuthorityHost:      e.AuthorityHost,
		GraphURL:           e.GraphURL,
		ServicePrincipalID: e.ServicePrincipalID,
		NestedGroups:       e.NestedGroups,
		AppGroupsTTL:       e.AppGroupsTTL,
		MaxAttempts:        e.GraphMaxAttempts,
		MaxRetryTime:       e.GraphMaxRetryTime,
		RequestTimeout:     e.GraphTimeout,
	}
}

func graphOptions(opts appOptions, log *slog.Logger) []graph.Option {
	o := []graph.Option{graph.WithLogger(log)}
	if opts.httpClient != nil {
		o = append(o, graph.WithHTTPClient(opts.httpClient))
	}
	return o
}

// issuerURL is the single-tenant v2.0 issuer, which go-oidc matches exactly.
func issuerURL(e EntraConfig) string {
	return strings.TrimRight(e.AuthorityHost, "/") + "/" + e.TenantID + "/v2.0"
}

func (a *app) Close() error {
	if !a.ownsStore {
		return nil
	}
	return a.store.Close()
}

// serve listens on addr (or uses ln) until ctx ends, then shuts down
// gracefully: in-flight requests (streams included) get server.shutdown_grace.
func (a *app) serve(ctx context.Context, addr string, ln net.Listener) error {
	handler := a.gateway.Handler()
	if a.cfg.Server.MetricsListen != "" {
		handler = a.metrics.wrap(handler)
		mln, err := net.Listen("tcp", a.cfg.Server.MetricsListen)
		if err != nil {
			return fmt.Errorf("server.metrics_listen: %w", err)
		}
		msrv := &http.Server{Handler: a.metrics.handler(), ReadHeaderTimeout: 10 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
		a.log.Info("metrics listening", "addr", mln.Addr().String())
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// "OPTIONS *" too goes to the gateway, which answers it as
		// net/http would but after its framing checks (gateway/framing.go).
		DisableGeneralOptionsHandler: true,
		// No WriteTimeout: streamed completions may run for minutes.
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("server.listen: %w", err)
		}
	}
	if a.cfg.Server.TLSCertFile == "" {
		// Refuse Content-Length with Transfer-Encoding (gateway/framing.go).
		ln, srv.ConnContext = gateway.FramingListener(ln), gateway.FramingConnContext
	}
	go a.expireSessions(ctx)
	if w := a.watchSessions(); w != nil {
		defer w.Close()
	}
	if a.background != nil {
		// A run in progress at shutdown is cut short: its transactions roll
		// back and the stored delta link has not moved, so the next run
		// (here or on another replica) repeats it.
		done := make(chan struct{})
		go func() { defer close(done); a.background.Run(ctx) }()
		defer func() { <-done }()
	}
	// The outbox worker outlives ctx until the HTTP server has shut down
	// (deferred): sign-ins during the grace period still get their
	// operations delivered (and waited for, with wait_on_sign_in).
	wctx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	a.prov.start(wctx)
	defer func() { stopWorker(); a.prov.stop(ctx) }()
	errc := make(chan error, 1)
	if c := a.cfg.Server; c.TLSCertFile != "" {
		go func() { errc <- srv.ServeTLS(ln, c.TLSCertFile, c.TLSKeyFile) }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	a.log.Info("teamgate listening", "addr", ln.Addr().String(), "public_url", a.cfg.Server.PublicURL,
		"upstream", a.cfg.Upstream.URL, "api_keys", a.cfg.Upstream.APIKeys, "database", store.RedactURL(a.cfg.Database.URL), "version", buildVersion())
	if a.cfg.Upstream.APIKeys == gateway.APIKeysPassthrough {
		a.log.Info("requests with their own LiteLLM key go to the upstream without a session, for LiteLLM to check the key; " +
			"if LiteLLM trusts the identity headers (enable_oauth2_proxy_auth) it checks no key: set upstream.api_keys: session_required")
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	grace := a.cfg.Server.ShutdownGrace.Std()
	a.log.Info("shutting down: no new connections; in-flight requests and streams may finish", "grace", grace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// The grace ran out with requests (usually long streams) still
		// open: cut them. This is still the normal end of a SIGTERM, so
		// serve returns nil (exit status 0); the cut is logged.
		srv.Close()
		a.log.Warn("shutdown grace ran out: cut the requests and streams still open", "grace", grace, "error", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// expireSessions deletes expired sessions every few minutes.
func (a *app) expireSessions(ctx context.Context) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := a.store.DeleteExpiredSessions(ctx, time.Now())
			if err != nil {
				a.log.Warn("deleting expired sessions", "error", err)
			} else if n > 0 {
				a.log.Debug("deleted expired sessions", "count", n)
			}
		}
	}
}

// newLogger logs through gateway.NewLogHandler: slog's JSON or text
// handler, with the gateway's access lines encoded without slog's generic
// record (see accesslog.go there).
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	return slog.New(gateway.NewLogHandler(w, c.Format == "text", &slog.HandlerOptions{Level: level}))
}
