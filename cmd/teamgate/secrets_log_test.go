package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/teamgate/teamgate/sync/litellmfake"
	"github.com/teamgate/teamgate/sync/store"
)

// secretSet collects every secret value seen during a test run, named by
// what it is, so the log can be searched for each.
type secretSet struct {
	mu     sync.Mutex
	values map[string]string // value → what it is
}

func (s *secretSet) add(what, value string) {
	if len(value) < 8 {
		return // too short to search for without false alarms; none of ours is
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]string{}
	}
	s.values[value] = what
	// A JWT could be logged in part: its claims or its signature alone.
	if parts := strings.Split(value, "."); len(parts) == 3 {
		for i, p := range parts[1:] {
			if len(p) >= 16 {
				s.values[p] = what + []string{" (claims part)", " (signature part)"}[i]
			}
		}
	}
}

// wrapTenant records what the token endpoint is sent (code, PKCE verifier,
// client secret) and what it answers (access, ID and refresh tokens).
func (s *secretSet) wrapTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			for _, k := range []string{"code", "code_verifier", "client_secret", "refresh_token"} {
				s.add("token request "+k, form.Get(k))
			}
		}
		if q := r.URL.Query(); q.Get("nonce") != "" {
			s.add("nonce", q.Get("nonce"))
			s.add("PKCE challenge", q.Get("code_challenge"))
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var answer map[string]any
		if json.Unmarshal(rec.Body.Bytes(), &answer) == nil {
			for _, k := range []string{"access_token", "id_token", "refresh_token"} {
				if v, ok := answer[k].(string); ok {
					s.add("token answer "+k, v)
				}
			}
		}
		if loc, err := url.Parse(rec.Header().Get("Location")); err == nil {
			s.add("authorization code", loc.Query().Get("code"))
			s.add("state", loc.Query().Get("state"))
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// cookieWatch records every cookie the gateway sets.
type cookieWatch struct {
	rt      http.RoundTripper
	secrets *secretSet
}

func (c cookieWatch) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := c.rt.RoundTrip(r)
	if err == nil {
		for _, ck := range res.Cookies() {
			c.secrets.add("cookie "+ck.Name, ck.Value)
		}
	}
	return res, err
}

// Secrets never appear in the log, at debug level, through sign-in,
// proxying, API keys, the admin API, provisioning into LiteLLM, failures
// and sign-out.
func TestSecretsNeverInLogs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		secrets := &secretSet{}
		const apiKey = "sk-e2e-virtual-key-0123456789"
		for what, v := range map[string]string{
			"client secret": e2eSecret, "session secret": e2eSessKey, "admin token": e2eAdminKey,
			"LiteLLM master key": e2eMasterKey, "virtual key": apiKey,
		} {
			secrets.add(what, v)
		}
		fake := litellmfake.New(e2eMasterKey)
		llm := httptest.NewServer(fake)
		t.Cleanup(llm.Close)
		e := startE2E(t, st, e2eOptions{wrapTenant: secrets.wrapTenant, tweak: func(c *Config) {
			c.LiteLLM.URL, c.LiteLLM.MasterKey = llm.URL, e2eMasterKey
		}})

		b := e.browser()
		b.client.Transport = cookieWatch{rt: http.DefaultTransport, secrets: secrets}
		if res, body := b.signIn(e.gw.URL, "/ui/", id("alice")); res.StatusCode != http.StatusOK {
			t.Fatalf("sign-in: %d %.300s", res.StatusCode, body)
		}
		b.api("GET", e.gw.URL+"/v1/models")
		if a := e.upstream.last(t).Header.Get("X-Teamgate-Assertion"); a != "" {
			secrets.add("identity assertion", a)
		}
		b.api("GET", e.gw.URL+"/v1/models", "Authorization", "Bearer "+apiKey)
		b.api("GET", e.gw.URL+"/v1/models", "X-Api-Key", apiKey)
		e.admin("/teamgate/api/users/"+id("alice"), nil)
		if e.app.prov != nil {
			if _, err := e.app.prov.worker.Drain(t.Context()); err != nil {
				t.Logf("drain: %v", err)
			}
		}

		// Failure paths log causes: a replayed callback, Graph failing, a
		// wrong admin token, a forged cookie.
		cb := callbackURL(t, e, b, id("bob"))
		do(t, b.noRedirects(), mustReq(t, "GET", cb, "Accept", "text/html"))
		do(t, b.noRedirects(), mustReq(t, "GET", cb, "Accept", "text/html"))
		e.tenant.FailNext("/memberOf", 20, http.StatusServiceUnavailable, "0")
		e.browser().signIn(e.gw.URL, "/", id("carol"))
		req := mustReq(t, "GET", e.gw.URL+"/teamgate/api/teams", "Authorization", "Bearer "+e2eAdminKey+"x")
		do(t, http.DefaultClient, req)
		b.api("GET", e.gw.URL+"/v1/models", "Cookie", "teamgate_session="+e2eSessKey)
		b.get(e.gw.URL + "/oauth2/sign_out")

		log := e.logs.String()
		if !strings.Contains(log, `"level":"DEBUG"`) && !strings.Contains(log, `"level":"INFO"`) {
			t.Fatal("the log is empty: the test would prove nothing")
		}
		secrets.mu.Lock()
		defer secrets.mu.Unlock()
		t.Logf("searched a %d-byte log for %d secret values", len(log), len(secrets.values))
		for v, what := range secrets.values {
			if i := strings.Index(log, v); i >= 0 {
				start := max(0, i-200)
				t.Errorf("the log contains the %s:\n…%s…", what, log[start:min(len(log), i+len(v)+50)])
			}
		}
	})
}
