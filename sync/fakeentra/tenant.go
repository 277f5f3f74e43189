// Package fakeentra is a fake Microsoft Entra ID tenant: the OIDC endpoints
// of login.microsoftonline.com (discovery, JWKS, authorize, token, logout)
// and the slice of Microsoft Graph that teamgate reads (users, memberOf,
// transitiveMemberOf, the service principal and its app role assignments,
// groups, groups/delta), served by one http.Handler.
//
// It exists so that the sync engine and the gateway can be tested end to end
// against the behaviour that bites in production — PKCE and single-use codes,
// paging with absolute nextLinks, directory roles mixed into memberOf,
// limited-information answers and 403s when a permission is missing,
// throttling with Retry-After, delta rounds whose tokens expire (410), users
// disabled or deleted between sign-ins — and so that `teamgate dev` can run
// without a real tenant. The directory can be edited while the tenant is
// serving.
package fakeentra

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Config describes the tenant and the one app registration it knows.
type Config struct {
	TenantID, ClientID, ClientSecret string
	// ServicePrincipalID is the object id of the Enterprise App's service
	// principal (for /servicePrincipals/{id}/appRoleAssignedTo). Empty means
	// one derived from ClientID.
	ServicePrincipalID string
	// RedirectURIs are the registered redirect URIs; empty accepts any.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the registered post-logout URIs; empty
	// accepts any.
	PostLogoutRedirectURIs []string
	// AssignmentRequired makes authorize refuse (AADSTS50105) users who are
	// not assigned to the app directly or through a group they are a direct
	// member of. It sets Directory.AssignmentRequired, which
	// SetAssignmentRequired changes later.
	AssignmentRequired bool
	// AppPermissions are the application permissions granted to the client,
	// carried as `roles` in app-only tokens. nil means GroupMember.Read.All,
	// User.Read.All and Application.Read.All; an empty non-nil slice means none.
	AppPermissions []string
	Directory      Directory
	// Now is the clock for token lifetimes and code expiry; nil = time.Now.
	Now func() time.Time
}

// DefaultAppPermissions are granted when Config.AppPermissions is nil.
var DefaultAppPermissions = []string{"GroupMember.Read.All", "User.Read.All", "Application.Read.All"}

// Tenant is a running fake tenant. All methods are safe for concurrent use.
type Tenant struct {
	cfg Config // immutable after New, except under mu as noted

	mu       sync.Mutex
	baseURL  string
	dir      *dirIndex // replaced, never mutated
	version  uint64    // counts directory changes; delta tokens name one
	delta    deltaState
	perms    []string
	keys     []*signingKey
	codes    map[string]*authCode
	refresh  map[string]*refreshGrant
	faults   []*fault
	latency  map[string]time.Duration
	calls    map[string]int // by request path
	reqCount uint64
}

// New validates cfg and returns a tenant. Call SetBaseURL before serving.
func New(cfg Config) (*Tenant, error) {
	var errs []error
	if cfg.TenantID == "" {
		errs = append(errs, errors.New("TenantID is required"))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("ClientID is required"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("ClientSecret is required"))
	}
	if strings.ContainsAny(cfg.TenantID, "/?#") {
		errs = append(errs, errors.New("TenantID must not contain '/', '?' or '#'"))
	}
	d := cfg.Directory.clone()
	d.AssignmentRequired = d.AssignmentRequired || cfg.AssignmentRequired
	dir, err := indexDirectory(d)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("fakeentra: invalid config: %w", errors.Join(errs...))
	}
	if cfg.ServicePrincipalID == "" {
		cfg.ServicePrincipalID = stableUUID("service-principal", cfg.ClientID)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	perms := DefaultAppPermissions
	if cfg.AppPermissions != nil {
		perms = cfg.AppPermissions
	}
	k, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	return &Tenant{
		cfg:     cfg,
		dir:     dir,
		perms:   append([]string(nil), perms...),
		keys:    []*signingKey{k},
		codes:   map[string]*authCode{},
		refresh: map[string]*refreshGrant{},
		latency: map[string]time.Duration{},
		calls:   map[string]int{},
		delta:   deltaState{pageSize: defaultDeltaPageSize, states: map[uint64]*dirIndex{}},
	}, nil
}

// SetBaseURL tells the tenant where it is served (scheme://host[:port], no
// path). The issuer, endpoint URLs and Graph nextLinks are built from it, so
// it must be called before the first request, typically with
// httptest.Server.URL.
func (t *Tenant) SetBaseURL(u string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.baseURL = strings.TrimRight(u, "/")
}

func (t *Tenant) base() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.baseURL
}

// AuthorityHost is the base URL, the fake's login.microsoftonline.com.
func (t *Tenant) AuthorityHost() string { return t.base() }

// GraphURL is the fake's graph.microsoft.com: Graph calls go to
// GraphURL()+"/v1.0/...", and app-only tokens are asked for with the scope
// GraphURL()+"/.default".
func (t *Tenant) GraphURL() string { return t.base() + "/graph" }

// Issuer is the ID token issuer, base/{tenant}/v2.0, which is also the OIDC
// discovery base.
func (t *Tenant) Issuer() string { return t.base() + "/" + t.cfg.TenantID + "/v2.0" }

// AuthorizeURL, TokenURL and LogoutURL are the tenant's OAuth endpoints, as
// discovery lists them.
func (t *Tenant) AuthorizeURL() string { return t.login() + "/oauth2/v2.0/authorize" }
func (t *Tenant) TokenURL() string     { return t.login() + "/oauth2/v2.0/token" }
func (t *Tenant) LogoutURL() string    { return t.login() + "/oauth2/v2.0/logout" }
func (t *Tenant) login() string        { return t.base() + "/" + t.cfg.TenantID }

// TenantID, ClientID and ServicePrincipalID return the configured ids
// (ServicePrincipalID is derived from the client id when not configured).
func (t *Tenant) TenantID() string           { return t.cfg.TenantID }
func (t *Tenant) ClientID() string           { return t.cfg.ClientID }
func (t *Tenant) ServicePrincipalID() string { return t.cfg.ServicePrincipalID }

func (t *Tenant) now() time.Time { return t.cfg.Now() }

// snapshot returns the current directory index; it is never mutated.
func (t *Tenant) snapshot() *dirIndex {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dir
}

// ServeHTTP serves both the login endpoints (under /{tenant}/) and Graph
// (under /graph/).
func (t *Tenant) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if t.base() == "" {
		http.Error(w, "fakeentra: SetBaseURL was not called", http.StatusInternalServerError)
		return
	}
	t.countCall(r.URL.Path)
	if !t.delay(r) {
		return // the client went away while we were slow on purpose
	}
	if t.injectFault(w, r) {
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/graph/"); ok {
		t.serveGraph(w, r, rest)
		return
	}
	t.serveLogin(w, r)
}

// serveLogin routes the login.microsoftonline.com side.
func (t *Tenant) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" && r.Method == http.MethodGet {
		t.renderIndex(w)
		return
	}
	tenant, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if tenant != t.cfg.TenantID {
		writeOAuthError(w, http.StatusBadRequest, "invalid_tenant", 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	switch rest {
	case "v2.0/.well-known/openid-configuration":
		t.serveDiscovery(w, r)
	case "discovery/v2.0/keys":
		t.serveJWKS(w, r)
	case "oauth2/v2.0/authorize":
		t.serveAuthorize(w, r)
	case "oauth2/v2.0/token":
		t.serveToken(w, r)
	case "oauth2/v2.0/logout":
		t.serveLogout(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serveDiscovery answers the tenant-specific OpenID configuration. Like
// Entra it does not list code_challenge_methods_supported although PKCE S256
// works: relying parties must not decide PKCE from discovery.
func (t *Tenant) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                t.Issuer(),
		"authorization_endpoint":                t.AuthorizeURL(),
		"token_endpoint":                        t.TokenURL(),
		"end_session_endpoint":                  t.LogoutURL(),
		"jwks_uri":                              t.login() + "/discovery/v2.0/keys",
		"userinfo_endpoint":                     t.GraphURL() + "/oidc/userinfo",
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name",
			"preferred_username", "email", "oid", "tid", "ver"},
		"tenant_region_scope":             "EU",
		"request_uri_parameter_supported": false,
		"frontchannel_logout_supported":   true,
		"http_logout_supported":           true,
	})
}

// stableUUID derives a UUID-shaped id from its parts, so that ids the caller
// did not give (the service principal, demo objects) are the same every run.
func stableUUID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	h[6] = h[6]&0x0f | 0x50 // version 5 shape
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// redirectAllowed reports whether u is in the registered list (empty list:
// any absolute http(s) URL).
func redirectAllowed(registered []string, u string) bool {
	if len(registered) == 0 {
		p, err := url.Parse(u)
		return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
	}
	for _, r := range registered {
		if r == u {
			return true
		}
	}
	return false
}

var _ http.Handler = (*Tenant)(nil)
