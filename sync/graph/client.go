package graph

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Client reads a tenant's groups from Microsoft Graph with an app-only token.
// It is safe for concurrent use; one Client should serve the whole process so
// that the token and the app's assigned groups are shared.
type Client struct {
	cfg      Config
	graph    *url.URL // parsed GraphURL: nextLinks must point back to it
	tokenURL string

	http    *http.Client
	log     *slog.Logger
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
	random  func() float64
	observe func(RequestEvent)

	// flights lets concurrent callers share one token fetch ("token") and
	// one app-assignments fetch ("appAssignments", or "appAssignmentsFresh"
	// for callers that bypass the cache).
	flights singleflight.Group

	mu        sync.Mutex
	token     string
	refreshAt time.Time      // when the cached token must be replaced
	app       AppAssignments // cached; app.FetchedAt says when it was fetched
	appValid  bool
}

// RequestEvent describes one HTTP attempt, for metrics.
type RequestEvent struct {
	// Endpoint is a low-cardinality label: token, memberOf,
	// transitiveMemberOf, user, appRoleAssignedTo, servicePrincipal,
	// groupsDelta, members or transitiveMembers.
	Endpoint  string
	Status    int  // HTTP status; 0 when the attempt got no answer
	Attempt   int  // 1 for the first try of a request
	Throttled bool // status 429
	Duration  time.Duration
}

// Option customises a Client; tests use them to make time and randomness
// deterministic.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: a plain http.Client; each
// attempt is bounded by Config.RequestTimeout through its context).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithLogger sets the logger (default: discard). Tokens and secrets are
// never logged.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithClock sets the clock used for token expiry, caching and the retry
// budget.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithSleep sets how the client waits between retries; it must return early
// with the context's error when ctx is done.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) { c.sleep = sleep }
}

// WithRandom sets the jitter source, returning values in [0, 1).
func WithRandom(random func() float64) Option { return func(c *Client) { c.random = random } }

// WithObserver is called after every HTTP attempt (e.g. to count requests
// in Prometheus). It must be fast and safe for concurrent use.
func WithObserver(observe func(RequestEvent)) Option { return func(c *Client) { c.observe = observe } }

// New validates cfg and returns a client. It does no I/O.
func New(cfg Config, opts ...Option) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("graph config: %w", err)
	}
	base, err := url.Parse(cfg.GraphURL)
	if err != nil {
		return nil, fmt.Errorf("graph config: graph_url: %w", err)
	}
	c := &Client{
		cfg:      cfg,
		graph:    base,
		tokenURL: cfg.AuthorityHost + "/" + url.PathEscape(cfg.TenantID) + "/oauth2/v2.0/token",
		http:     &http.Client{},
		log:      slog.New(slog.DiscardHandler),
		now:      time.Now,
		sleep:    sleepContext,
		random:   rand.Float64,
		observe:  func(RequestEvent) {},
	}
	for _, opt := range opts {
		opt(c)
	}
	c.log = c.log.With("component", "graph")
	return c, nil
}

// HasServicePrincipal reports whether AppGroups and AppAssignments can be
// called.
func (c *Client) HasServicePrincipal() bool { return c.cfg.ServicePrincipalID != "" }

// sleepContext waits d or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// shared runs fn once for all concurrent callers with the same key. The
// fetch runs on a context detached from the first caller (but bounded), so
// one caller giving up does not fail the others; each caller still stops
// waiting when its own ctx is done.
func (c *Client) shared(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("microsoft graph: %w", err)
	}
	ch := c.flights.DoChan(key, func() (any, error) {
		limit := c.cfg.MaxRetryTime + time.Duration(c.cfg.MaxAttempts)*c.cfg.RequestTimeout
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
		defer cancel()
		return fn(fctx)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("microsoft graph: %w", ctx.Err())
	case r := <-ch:
		return r.Val, r.Err
	}
}
