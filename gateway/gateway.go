// Package gateway is teamgate's HTTP side: Entra sign-in (OIDC code flow
// with PKCE and nonce), server-side sessions behind an opaque cookie, the
// identity-injecting reverse proxy in front of LiteLLM, the admin JSON API
// and health endpoints.
//
// The package depends on the rest of teamgate only through the small
// interfaces in ports.go, which cmd/teamgate satisfies with adapters.
package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/teamgate/teamgate/web"
)

// Deps are the gateway's collaborators. Syncer and Sessions are required;
// Directory is required when the admin API is enabled; DB may be nil (then
// readiness does not check a database).
type Deps struct {
	Syncer    Syncer
	Sessions  SessionStore
	Directory Directory
	DB        Pinger
	// SigningKeys keeps the generated assertion signing key so that every
	// replica signs with it; nil: a key in memory (see ports_keys.go).
	SigningKeys SigningKeyStore
	Logger      *slog.Logger
	Now         func() time.Time // the clock for sessions and tokens; time.Now if nil

	// Outbox serves the LiteLLM provisioning outbox in the admin API; nil
	// when provisioning is off (its endpoints answer 404).
	Outbox OutboxAdmin

	// Pages serves /teamgate/me and /teamgate/admin; nil turns them off
	// (see ports_pages.go).
	Pages PageSource

	// Revalidator re-checks signed-in users (session_revalidate.go);
	// required when session.revalidate_after is set.
	Revalidator Revalidator
}

// Gateway serves teamgate's HTTP traffic. Create it with New and serve
// Handler().
type Gateway struct {
	cfg        Config
	oidcCfg    OIDCConfig
	deps       Deps
	log        *slog.Logger
	now        func() time.Time
	publicURL  string // without trailing slash
	httpClient *http.Client

	headers  identityHeaders
	trusted  trustedPeers
	sessions *sessionResolver
	states   *stateCookies
	proxy    *httputil.ReverseProxy
	engine   *gin.Engine
	assert   *signedIdentity // nil when assertion.enabled is false
	csrf     *csrfGuard      // the pages' forms (csrf.go)

	adminTokenSum [sha256.Size]byte

	oidc       atomic.Pointer[oidcClient]
	discoverMu sync.Mutex
}

var ginModeOnce sync.Once

// New applies defaults to cfg, validates it and builds the gateway. It
// tries OIDC discovery once; if Entra is unreachable it keeps retrying in
// the background until ctx ends (readyz reports not ready meanwhile, and
// sign-in retries on demand), so the process starts regardless. ctx should
// therefore live as long as the server, not just its start-up.
func New(ctx context.Context, cfg Config, oidcCfg OIDCConfig, deps Deps) (*Gateway, error) {
	cfg.ApplyDefaults()
	errs := []error{cfg.Validate(), oidcCfg.validate()}
	if deps.Syncer == nil {
		errs = append(errs, errors.New("gateway: Deps.Syncer is required"))
	}
	if deps.Sessions == nil {
		errs = append(errs, errors.New("gateway: Deps.Sessions is required"))
	}
	if cfg.Admin.APIToken != "" && deps.Directory == nil {
		errs = append(errs, errors.New("gateway: Deps.Directory is required when admin.api_token is set"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	upstream, err := url.Parse(cfg.Upstream.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream.url: %w", err)
	}
	httpClient := oidcCfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}

	publicURL := strings.TrimSuffix(cfg.Server.PublicURL, "/")
	secure := hasPrefixFold(publicURL, "https://") // url.Parse accepted any case of the scheme
	g := &Gateway{
		cfg:        cfg,
		oidcCfg:    oidcCfg,
		deps:       deps,
		log:        deps.Logger.With("component", "gateway"),
		now:        deps.Now,
		publicURL:  publicURL,
		httpClient: httpClient,
		headers:    newIdentityHeaders(cfg.Upstream.Headers),
		states:     newStateCookies(cfg.Session, secure, deps.Now),
	}
	g.trusted, _ = parseTrustedProxies(cfg.Server.TrustedProxies) // validated above
	g.sessions = newSessionResolver(cfg, newSessionCookies(cfg.Session, secure), deps.Sessions, deps.Now)
	if err := g.setUpSessionLifecycle(); err != nil {
		return nil, err
	}
	if err := g.setUpRevalidation(); err != nil {
		return nil, err
	}
	g.adminTokenSum = sha256.Sum256([]byte(cfg.Admin.APIToken))
	g.csrf = newCSRFGuard(cfg.Session.Secret, publicURL)
	if err := g.setUpAssertion(ctx); err != nil {
		return nil, err
	}
	g.startKeyRefresh(ctx)
	g.proxy = g.newReverseProxy(upstream)
	g.engine = g.newEngine()

	if _, err := g.discover(ctx); err != nil {
		g.log.Warn("oidc discovery failed at start; retrying in the background", "issuer", oidcCfg.Issuer, "error", err)
		go g.keepDiscovering(ctx)
	}
	return g, nil
}

// Handler returns the HTTP handler serving every path.
func (g *Gateway) Handler() http.Handler { return g }

// InvalidateUser drops this replica's cached sessions of a user, so that
// their next request sees the teams a sync has just written.
func (g *Gateway) InvalidateUser(userID string) {
	g.sessions.cache.deleteUser(userID)
	g.forgetAssertions(userID)
}

// newEngine routes teamgate's own paths. Only requests whose normalised path
// is reserved reach it (see classifyPath); gin's path "fixing" redirects
// are off because the normalisation already happened.
func (g *Gateway) newEngine() *gin.Engine {
	ginModeOnce.Do(func() { gin.SetMode(gin.ReleaseMode) })
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(func(c *gin.Context) { setPageHeaders(c.Writer.Header()) })

	e.GET("/oauth2/start", g.handleStart)
	e.GET("/oauth2/callback", g.handleCallback)
	e.GET("/oauth2/sign_out", g.handleSignOut)
	e.POST("/oauth2/sign_out", g.handleSignOut)

	e.GET("/teamgate/healthz", g.handleHealthz)
	e.HEAD("/teamgate/healthz", g.handleHealthz)
	e.GET("/teamgate/readyz", g.handleReadyz)
	e.HEAD("/teamgate/readyz", g.handleReadyz)
	e.GET("/teamgate/signed-out", g.handleSignedOut)
	e.HEAD("/teamgate/signed-out", g.handleSignedOut)

	static := http.StripPrefix(strings.TrimSuffix(web.StaticPrefix, "/"), web.Static())
	serveStatic := func(c *gin.Context) {
		c.Writer.Header().Set("Cache-Control", "public, max-age=3600")
		static.ServeHTTP(c.Writer, c.Request)
	}
	e.GET(web.StaticPrefix+"*filepath", serveStatic)
	e.HEAD(web.StaticPrefix+"*filepath", serveStatic)

	api := e.Group("/teamgate/api", g.adminAuth)
	api.GET("/teams", g.handleTeams)
	api.GET("/teams/:team_id", g.handleTeam)
	api.GET("/users/:user_id", g.handleUser)
	api.GET("/sync-events", g.handleSyncEvents)
	api.POST("/users/:user_id/revoke-sessions", g.handleRevokeSessions)
	g.routeOutbox(api)

	g.routeJWKS(e)
	g.routePages(e)

	// Under /teamgate/api/ an unknown path or method is reported only to a
	// client with the admin token: anyone else gets the API's 401 (or 404
	// while it is off) whatever the method, so that 404s and 405s do not
	// map its routes.
	e.NoRoute(func(c *gin.Context) {
		if isAdminAPIPath(c.Request.URL.Path) {
			if g.adminAuthorized(c) {
				g.writeAPIError(c, errNotFound())
			}
			return
		}
		g.writeError(c.Writer, c.Request, errNotFound())
	})
	e.NoMethod(func(c *gin.Context) {
		notAllowed := &statusError{Status: http.StatusMethodNotAllowed,
			Title: "Method not allowed", Message: "This teamgate page does not accept " + c.Request.Method + " requests."}
		if isAdminAPIPath(c.Request.URL.Path) {
			if g.adminAuthorized(c) {
				g.writeAPIError(c, notAllowed)
			}
			return
		}
		g.writeError(c.Writer, c.Request, notAllowed)
	})
	return e
}
