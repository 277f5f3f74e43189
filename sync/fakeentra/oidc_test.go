package fakeentra

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// relyingParty is a minimal OIDC client built from discovery, as the
// gateway builds its own.
type relyingParty struct {
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newRelyingParty(t *testing.T, tn *Tenant) *relyingParty {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), tn.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{
		provider: p,
		conf: oauth2.Config{
			ClientID: testClient, ClientSecret: testSecret, Endpoint: p.Endpoint(), RedirectURL: testRedirect,
			Scopes: []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess},
		},
		verifier: p.Verifier(&oidc.Config{ClientID: testClient}),
	}
}

// authorize runs the non-interactive authorize step and returns the
// redirect's query.
func (rp *relyingParty) authorize(t *testing.T, state, nonce, pkceVerifier string, extra ...oauth2.AuthCodeOption) url.Values {
	t.Helper()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(pkceVerifier), oidc.Nonce(nonce)}, extra...)
	resp, err := noRedirect.Get(rp.conf.AuthCodeURL(state, opts...))
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("authorize: bad Location: %v", err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Fatalf("redirected to %s, want %s", got, testRedirect)
	}
	return loc.Query()
}

func TestDiscoveryDoesNotAdvertisePKCE(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	resp, err := http.Get(tn.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["code_challenge_methods_supported"]; ok {
		t.Error("discovery lists code_challenge_methods_supported; Entra does not")
	}
	for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint", "end_session_endpoint", "jwks_uri"} {
		if s, _ := doc[k].(string); s == "" {
			t.Errorf("discovery lacks %s", k)
		}
	}
	if doc["issuer"] != tn.Issuer() {
		t.Errorf("issuer = %v, want %s", doc["issuer"], tn.Issuer())
	}
}

func TestCodeFlowWithPKCE(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{RedirectURIs: []string{testRedirect}})
	rp := newRelyingParty(t, tn)
	ctx := context.Background()
	pkce := oauth2.GenerateVerifier()

	q := rp.authorize(t, "st-1", "n-1", pkce, oauth2.SetAuthURLParam("login_hint", "alice@example.com"))
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("callback query = %v", q)
	}
	tok, err := rp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" {
		t.Fatalf("token lacks access or refresh token: %+v", tok)
	}
	if got := tok.Extra("ext_expires_in"); got != float64(3599) {
		t.Errorf("ext_expires_in = %v", got)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify id_token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"nonce": "n-1", "oid": "u-alice", "tid": testTenant, "preferred_username": "alice@example.com",
		"name": "Alice", "email": "alice@example.com", "ver": "2.0", "aud": testClient,
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if claims["sub"] == "u-alice" || claims["sub"] == "" {
		t.Errorf("sub = %v, want a pairwise subject distinct from oid", claims["sub"])
	}

	// The access token is a delegated Graph token: /me works.
	resp, me := graphGet(t, tn, tok.AccessToken, "/v1.0/me")
	if resp.StatusCode != http.StatusOK || me["id"] != "u-alice" {
		t.Fatalf("/me = %d %v", resp.StatusCode, me)
	}

	// The refresh token yields fresh tokens, without a nonce.
	status, body := postToken(t, tn, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
		"client_id": {testClient}, "client_secret": {testSecret}})
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, body)
	}
	if _, err := rp.verifier.Verify(ctx, body["id_token"].(string)); err != nil {
		t.Fatalf("refreshed id_token: %v", err)
	}
}

func TestIDTokenOmitsEmailWithoutMailbox(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	rp := newRelyingParty(t, tn)
	pkce := oauth2.GenerateVerifier()
	q := rp.authorize(t, "s", "n", pkce, oauth2.SetAuthURLParam("login_hint", "u-dave"))
	tok, err := rp.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := rp.verifier.Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	if _, ok := claims["email"]; ok {
		t.Errorf("email claim present for a user without mail: %v", claims["email"])
	}
	if claims["preferred_username"] != "dave@example.com" {
		t.Errorf("preferred_username = %v", claims["preferred_username"])
	}
}

func TestCodeRedemptionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mutate    func(form url.Values, clock *fakeClock)
		redeemTwo bool
		wantCode  float64
		wantError string
	}{
		{name: "wrong verifier", mutate: func(f url.Values, _ *fakeClock) { f.Set("code_verifier", oauth2.GenerateVerifier()) },
			wantCode: 501481, wantError: "invalid_grant"},
		{name: "missing verifier", mutate: func(f url.Values, _ *fakeClock) { f.Del("code_verifier") },
			wantCode: 501481, wantError: "invalid_grant"},
		{name: "reused code", redeemTwo: true, wantCode: 54005, wantError: "invalid_grant"},
		{name: "expired code", mutate: func(_ url.Values, c *fakeClock) { c.Advance(11 * time.Minute) },
			wantCode: 70008, wantError: "invalid_grant"},
		{name: "redirect uri differs", mutate: func(f url.Values, _ *fakeClock) { f.Set("redirect_uri", "https://evil.example/cb") },
			wantCode: 500112, wantError: "invalid_grant"},
		{name: "wrong secret", mutate: func(f url.Values, _ *fakeClock) { f.Set("client_secret", "nope") },
			wantCode: 7000215, wantError: "invalid_client"},
		{name: "unknown code", mutate: func(f url.Values, _ *fakeClock) { f.Set("code", "bogus") },
			wantCode: 9002313, wantError: "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			tn := startTenant(t, Config{Now: clock.Now})
			rp := newRelyingParty(t, tn)
			pkce := oauth2.GenerateVerifier()
			q := rp.authorize(t, "s", "n", pkce, oauth2.SetAuthURLParam("login_hint", "alice@example.com"))
			form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {testRedirect},
				"code_verifier": {pkce}, "client_id": {testClient}, "client_secret": {testSecret}}
			if tc.redeemTwo {
				if status, body := postToken(t, tn, form); status != http.StatusOK {
					t.Fatalf("first redemption: %d %v", status, body)
				}
			}
			if tc.mutate != nil {
				tc.mutate(form, clock)
			}
			status, body := postToken(t, tn, form)
			if status == http.StatusOK {
				t.Fatalf("redemption succeeded: %v", body)
			}
			codes, _ := body["error_codes"].([]any)
			if body["error"] != tc.wantError || len(codes) != 1 || codes[0] != tc.wantCode {
				t.Fatalf("got %v %v, want %s %v", body["error"], body["error_codes"], tc.wantError, tc.wantCode)
			}
			if desc, _ := body["error_description"].(string); !strings.HasPrefix(desc, "AADSTS") {
				t.Errorf("error_description %q lacks the AADSTS prefix", desc)
			}
		})
	}
}

func TestClientSecretBasicAuth(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	conf := oauth2.Config{ClientID: testClient, ClientSecret: testSecret, RedirectURL: testRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: tn.AuthorizeURL(), TokenURL: tn.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid"}}
	pkce := oauth2.GenerateVerifier()
	resp, err := noRedirect.Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("login_hint", "u-alice")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange with HTTP Basic client auth: %v", err)
	}
	if tok.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
}
