package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/gateway/assertion"
	"github.com/teamgate/teamgate/gateway/assertion/assertiontest"
	"github.com/teamgate/teamgate/sync/store"
)

// The README's "Connect LiteLLM" recipes are read from the README itself and
// checked against what the upstream really receives, so the documentation
// cannot drift from the code.

// codeBlock is a fenced block of the README.
type codeBlock struct{ lang, body string }

var fence = regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```")

// recipe returns the fenced blocks of the README section whose heading
// starts with heading, up to the next heading or comment.
func recipe(t *testing.T, heading string) []codeBlock {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "\n"+heading)
	if start < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	section := readme[start+1:]
	section = section[len(heading):]
	for _, end := range []string{"\n#", "\n<!--"} {
		if i := strings.Index(section, end); i >= 0 {
			section = section[:i]
		}
	}
	var out []codeBlock
	for _, m := range fence.FindAllStringSubmatch(section, -1) {
		out = append(out, codeBlock{lang: m[1], body: m[2]})
	}
	if len(out) == 0 {
		t.Fatalf("README section %q has no code block", heading)
	}
	return out
}

// yamlBlock decodes the first yaml block of blocks that has key at its top.
func yamlBlock(t *testing.T, blocks []codeBlock, key string, v any) {
	t.Helper()
	for _, b := range blocks {
		if b.lang == "yaml" && strings.HasPrefix(b.body, key+":") {
			if err := yaml.Unmarshal([]byte(b.body), v); err != nil {
				t.Fatalf("README yaml block %q: %v", key, err)
			}
			return
		}
	}
	t.Fatalf("README recipe has no yaml block starting with %q", key)
}

// envBlock reads NAME=value lines (comments dropped) of the bash block.
func envBlock(t *testing.T, blocks []codeBlock) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, b := range blocks {
		if b.lang != "bash" {
			continue
		}
		for _, line := range strings.Split(b.body, "\n") {
			line, _, _ = strings.Cut(line, "#")
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
				env[k] = strings.TrimSpace(v)
			}
		}
	}
	return env
}

func TestRecipeHeaderTrust(t *testing.T) {
	var litellm struct {
		GeneralSettings struct {
			EnableOAuth2ProxyAuth bool              `yaml:"enable_oauth2_proxy_auth"`
			Mappings              map[string]string `yaml:"oauth2_config_mappings"`
			TrustedProxyRanges    []string          `yaml:"trusted_proxy_ranges"`
		} `yaml:"general_settings"`
	}
	yamlBlock(t, recipe(t, "### (a)"), "general_settings", &litellm)
	gs := litellm.GeneralSettings
	if !gs.EnableOAuth2ProxyAuth || len(gs.TrustedProxyRanges) == 0 {
		t.Fatalf("recipe (a) = %+v: want enable_oauth2_proxy_auth and trusted_proxy_ranges", gs)
	}
	for _, r := range gs.TrustedProxyRanges {
		if _, _, err := net.ParseCIDR(r); err != nil {
			t.Errorf("trusted_proxy_ranges: %q is not a CIDR", r)
		}
	}
	for _, key := range []string{"user_id", "user_email", "team_id"} {
		if gs.Mappings[key] == "" {
			t.Errorf("recipe (a) maps no header to %s", key)
		}
	}

	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{tweak: func(c *Config) {
			var teamgate struct {
				Upstream *gateway.UpstreamConfig `yaml:"upstream"`
			}
			teamgate.Upstream = &c.Upstream // the recipe's keys go over the defaults
			yamlBlock(t, recipe(t, "### (a)"), "upstream", &teamgate)
		}})
		alice := e.browser()
		alice.signIn(e.gw.URL, "/", id("alice"))

		want := map[string]string{"user_id": id("alice"), "user_email": "alice@example.com", "team_id": id("data-science")}
		alice.api("POST", e.gw.URL+"/chat/completions")
		up := e.upstream.last(t)
		for key, header := range gs.Mappings {
			if got := up.Header.Values(header); len(got) != 1 || got[0] != want[key] {
				t.Errorf("LiteLLM's %s comes from %s = %q, want %q", key, header, got, want[key])
			}
		}

		// LiteLLM checks no key in this mode: a key is no way around
		// signing in. Without a session the request never reaches LiteLLM
		// (it would be served as nobody); with one it carries the identity.
		before := e.upstream.count()
		req := mustReq(t, "POST", e.gw.URL+"/chat/completions", "Authorization", "Bearer x", "Accept", "application/json")
		if res, _ := do(t, http.DefaultClient, req); res.StatusCode != http.StatusUnauthorized || e.upstream.count() != before {
			t.Errorf("a key without a session: %d, reached LiteLLM: %v; want 401, not reached", res.StatusCode, e.upstream.count() != before)
		}
		alice.api("POST", e.gw.URL+"/chat/completions", "Authorization", "Bearer sk-1234")
		up = e.upstream.last(t)
		for key, header := range gs.Mappings {
			if got := up.Header.Values(header); len(got) != 1 || got[0] != want[key] {
				t.Errorf("a signed-in request with a key: LiteLLM's %s comes from %s = %q, want %q", key, header, got, want[key])
			}
		}
	})
}

func TestRecipeJWTAuth(t *testing.T) {
	blocks := recipe(t, "### (b)")
	var litellm struct {
		GeneralSettings struct {
			EnableJWTAuth bool              `yaml:"enable_jwt_auth"`
			JWTAuth       map[string]string `yaml:"litellm_jwtauth"`
		} `yaml:"general_settings"`
	}
	yamlBlock(t, blocks, "general_settings", &litellm)
	fields := litellm.GeneralSettings.JWTAuth
	if !litellm.GeneralSettings.EnableJWTAuth {
		t.Fatal("recipe (b) does not set general_settings.enable_jwt_auth")
	}
	for _, f := range []string{"user_id_jwt_field", "user_email_jwt_field", "team_ids_jwt_field", "team_id_jwt_field"} {
		if fields[f] == "" {
			t.Errorf("recipe (b) sets no litellm_jwtauth.%s", f)
		}
	}
	// LiteLLM caches the JWKS for public_key_ttl and does not re-fetch on
	// an unknown kid: `keys rotate`'s default publication must cover it.
	if ttl, err := strconv.Atoi(fields["public_key_ttl"]); err != nil || time.Duration(ttl)*time.Second > assertion.LiteLLMKeyTTL {
		t.Errorf("recipe (b) public_key_ttl = %q: want seconds, at most %s (what keys rotate's default --publish-for covers)",
			fields["public_key_ttl"], assertion.LiteLLMKeyTTL)
	}
	env := envBlock(t, blocks)
	if env["JWT_PUBLIC_KEY_URL"] == "" || env["JWT_AUDIENCE"] == "" {
		t.Fatalf("recipe (b) environment = %v: want JWT_PUBLIC_KEY_URL and JWT_AUDIENCE", env)
	}

	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{tweak: func(c *Config) {
			var teamgate struct {
				Assertion *gateway.AssertionConfig `yaml:"assertion"`
			}
			teamgate.Assertion = &c.Assertion // the recipe's keys go over the defaults
			yamlBlock(t, blocks, "assertion", &teamgate)
		}})
		// What LiteLLM would be configured with, placeholders filled in.
		jwksURL := strings.Replace(env["JWT_PUBLIC_KEY_URL"], "https://<public_url>", e.app.cfg.Server.PublicURL, 1)
		audience := strings.Replace(env["JWT_AUDIENCE"], "<upstream.url>", e.app.cfg.Upstream.URL, 1)
		litellmVerifier := assertiontest.Verifier{JWKSURL: jwksURL, Issuer: e.app.cfg.Server.PublicURL, Audience: audience}

		alice := e.browser()
		alice.signIn(e.gw.URL, "/", id("alice"))
		alice.api("POST", e.gw.URL+"/chat/completions", "X-LiteLLM-Team-Id", id("engineering"))
		auth := e.upstream.last(t).Header.Values("Authorization")
		if len(auth) != 1 || !strings.HasPrefix(auth[0], "Bearer ") {
			t.Fatalf("LiteLLM received Authorization %q, want one Bearer JWT", auth)
		}
		claims, err := litellmVerifier.Verify(t.Context(), strings.TrimPrefix(auth[0], "Bearer "))
		if err != nil {
			t.Fatalf("LiteLLM, configured as the recipe says, would refuse the token: %v", err)
		}
		if !slices.Contains([]string{"RS256", "ES256"}, claims.Algorithm) {
			t.Errorf("signed %s, which LiteLLM's JWT mode does not list", claims.Algorithm)
		}
		checks := []struct {
			field string
			want  any
		}{
			{"user_id_jwt_field", id("alice")},
			{"user_email_jwt_field", "alice@example.com"},
			{"team_id_jwt_field", id("engineering")},
		}
		for _, c := range checks {
			if got := claims.Raw[fields[c.field]]; got != c.want {
				t.Errorf("%s: claim %q = %v, want %v", c.field, fields[c.field], got, c.want)
			}
		}
		teams, _ := claims.Raw[fields["team_ids_jwt_field"]].([]any)
		if !sameSet(toStrings(teams), []string{id("engineering"), id("data-science")}) {
			t.Errorf("team_ids_jwt_field: claim %q = %v", fields["team_ids_jwt_field"], teams)
		}

		// The client's own credential wins: an API key passes untouched.
		alice.api("POST", e.gw.URL+"/chat/completions", "Authorization", "Bearer sk-1234")
		if got := e.upstream.last(t).Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer sk-1234" {
			t.Errorf("an API-key request reached LiteLLM with Authorization %q", got)
		}
	})
}

func toStrings(v []any) []string {
	out := make([]string, 0, len(v))
	for _, x := range v {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestRecipeProvisioning reads recipe (c)'s litellm section through the real
// config parser and runs a sign-in with exactly those settings against the
// fake LiteLLM: the user, the app's teams and the memberships arrive.
func TestRecipeProvisioning(t *testing.T) {
	var block string
	for _, b := range recipe(t, "### (c)") {
		if b.lang == "yaml" && strings.HasPrefix(b.body, "litellm:") {
			block = b.body
		}
	}
	if block == "" {
		t.Fatal("recipe (c) has no litellm: yaml block")
	}
	env := mapEnv(map[string]string{"SECRET": "s", "SESSION": strings.Repeat("k", 40), "LITELLM_MASTER_KEY": e2eMasterKey})
	parsed, err := parseConfig("README (c)", []byte(validYAML+block), env)
	if err != nil {
		t.Fatalf("recipe (c) does not load: %v", err)
	}
	if !parsed.LiteLLM.Enabled() || parsed.LiteLLM.MasterKey != e2eMasterKey {
		t.Fatalf("recipe (c) leaves provisioning off: %+v", parsed.LiteLLM)
	}
	if parsed.LiteLLM.URL == "" && litellmURL(parsed) != parsed.Upstream.URL {
		t.Errorf("an empty litellm.url resolves to %q, want upstream.url %q", litellmURL(parsed), parsed.Upstream.URL)
	}

	forEachBackend(t, func(t *testing.T, st store.Store) {
		p := startProvisionE2E(t, st, func(c *Config) {
			fakeURL := c.LiteLLM.URL // the test's LiteLLM, not the upstream
			c.LiteLLM = parsed.LiteLLM
			c.LiteLLM.URL = fakeURL
		})
		p.signIn("alice-oid")
		p.drain()
		if u, ok := p.litellm.User("alice-oid"); !ok || u.Email != "alice@example.com" {
			t.Errorf("LiteLLM user = %+v, %v", u, ok)
		}
		for _, team := range []string{"eng", "ds", "ops"} {
			p.team(team)
		}
		if got := members(p.team("eng")); !slices.Contains(got, "alice-oid:user") {
			t.Errorf("eng members = %v, want alice-oid:user", got)
		}
	})
}
