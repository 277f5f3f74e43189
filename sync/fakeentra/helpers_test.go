package fakeentra

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testTenant   = "11111111-2222-3333-4444-555555555555"
	testClient   = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	testSecret   = "s3cret~value"
	testRedirect = "https://app.example.com/oauth2/callback"
)

// fakeClock is an injectable clock for code and token expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// smallDirectory has two users, a nested group pair, a directory role and an
// administrative unit.
func smallDirectory() Directory {
	return Directory{
		Users: []User{
			{ID: "u-alice", DisplayName: "Alice", Mail: "alice@example.com", UPN: "alice@example.com",
				MemberOf: []string{"g-eng", "r-reader", "au-eu"}},
			{ID: "u-dave", DisplayName: "Dave", UPN: "dave@example.com", MemberOf: []string{"g-mkt"}},
		},
		Groups: []Group{
			{ID: "g-eng", DisplayName: "Engineering", MemberOf: []string{"g-all"}},
			{ID: "g-all", DisplayName: "All Staff", MemberOf: []string{"g-eng"}}, // a cycle, on purpose
			{ID: "g-mkt", DisplayName: "Marketing"},
		},
		DirectoryRoles:      []DirectoryRole{{ID: "r-reader", DisplayName: "Global Reader"}},
		AdministrativeUnits: []AdministrativeUnit{{ID: "au-eu", DisplayName: "Europe"}},
		AppAssignments:      []string{"g-eng", "g-all", "u-dave"},
	}
}

// startTenant serves a tenant built from cfg (test ids filled in) on an
// httptest server.
func startTenant(t *testing.T, cfg Config) *Tenant {
	t.Helper()
	if cfg.TenantID == "" {
		cfg.TenantID = testTenant
	}
	if cfg.ClientID == "" {
		cfg.ClientID = testClient
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = testSecret
	}
	if cfg.Directory.Users == nil && cfg.Directory.Groups == nil {
		cfg.Directory = smallDirectory()
	}
	tn, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(tn)
	t.Cleanup(srv.Close)
	tn.SetBaseURL(srv.URL)
	return tn
}

// noRedirect is a client that returns redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// postToken calls the token endpoint with form and returns status and body.
func postToken(t *testing.T, tn *Tenant, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(tn.TokenURL(), form)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response is not JSON: %v", err)
	}
	return resp.StatusCode, body
}

// appToken gets an app-only Graph token by client credentials.
func appToken(t *testing.T, tn *Tenant) string {
	t.Helper()
	status, body := postToken(t, tn, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret},
		"scope": {tn.GraphURL() + "/.default"},
	})
	if status != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", status, body)
	}
	return body["access_token"].(string)
}

// graphGet calls a Graph URL (absolute, or relative to GraphURL) with a
// bearer token and decodes the JSON answer.
func graphGet(t *testing.T, tn *Tenant, token, path string, header ...string) (*http.Response, map[string]any) {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = tn.GraphURL() + path
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("GET %s: not JSON (%d): %s", u, resp.StatusCode, b)
	}
	return resp, body
}

// graphErrorCode extracts error.code from a Graph error body.
func graphErrorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}
