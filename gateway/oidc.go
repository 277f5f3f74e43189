package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCConfig is the sign-in side of the Entra app registration.
type OIDCConfig struct {
	// Issuer is the tenant-specific issuer,
	// {authority_host}/{tenant_id}/v2.0; it must match discovery exactly.
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes default to openid, profile and email. teamgate needs no refresh
	// token: it reads groups with its own app-only token.
	Scopes []string
	// HTTPClient talks to Entra (discovery, token endpoint, JWKS).
	HTTPClient *http.Client
}

func (c OIDCConfig) validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("oidc: issuer is required"))
	} else if err := checkHTTPURL(c.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("oidc: issuer %v", err))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("oidc: client id is required"))
	}
	if c.ClientSecret == "" {
		errs = append(errs, errors.New("oidc: client secret is required"))
	}
	return errors.Join(errs...)
}

// oidcClient is everything that needs discovery. It is built once and then
// shared read-only.
type oidcClient struct {
	oauth2     oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string // "" when the provider does not advertise one
}

const (
	discoveryTimeout  = 15 * time.Second
	discoveryRetryMin = time.Second
	discoveryRetryMax = time.Minute
)

// discover fetches the provider metadata once. Concurrent callers share one
// attempt; after a success every caller gets the stored client.
func (g *Gateway) discover(ctx context.Context) (*oidcClient, error) {
	if c := g.oidc.Load(); c != nil {
		return c, nil
	}
	g.discoverMu.Lock()
	defer g.discoverMu.Unlock()
	if c := g.oidc.Load(); c != nil {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, g.httpClient), g.oidcCfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery: %w", err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&extra); err != nil {
		return nil, fmt.Errorf("oidc discovery: %w", err)
	}
	scopes := g.oidcCfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	c := &oidcClient{
		oauth2: oauth2.Config{
			ClientID:     g.oidcCfg.ClientID,
			ClientSecret: g.oidcCfg.ClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  g.publicURL + "/oauth2/callback",
			Scopes:       scopes,
		},
		verifier:   provider.Verifier(&oidc.Config{ClientID: g.oidcCfg.ClientID, Now: g.now}),
		endSession: extra.EndSession,
	}
	g.oidc.Store(c)
	return c, nil
}

// keepDiscovering retries discovery in the background until it succeeds or
// ctx ends, so that teamgate starts (and reports not-ready) while Entra is
// unreachable instead of failing to start.
func (g *Gateway) keepDiscovering(ctx context.Context) {
	delay := discoveryRetryMin
	for {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		_, err := g.discover(ctx)
		if err == nil {
			g.log.Info("oidc discovery loaded", "issuer", g.oidcCfg.Issuer)
			return
		}
		delay = min(2*delay, discoveryRetryMax)
		g.log.Warn("oidc discovery failed; retrying", "issuer", g.oidcCfg.Issuer, "error", err, "retry_in", delay.String())
	}
}
