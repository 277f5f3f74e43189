package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testTenant   = "tenant-1"
	testClientID = "client-1"
	testSecret   = "s3cr3t-VALUE-must-never-show"
	testSP       = "sp-object-1"
	tokenPrefix  = "eyJ-access-"
)

// fakeClock is the time source of a test client; only sleeps move it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recordingSleeper returns at once, records what was asked and advances the
// clock, so retry tests are instant and exact.
type recordingSleeper struct {
	mu    sync.Mutex
	clock *fakeClock
	slept []time.Duration
}

func (s *recordingSleeper) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.slept = append(s.slept, d)
	s.mu.Unlock()
	s.clock.Advance(d)
	return nil
}

func (s *recordingSleeper) Slept() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.slept...)
}

// fakeTenant is a token endpoint plus Graph routes registered by each test.
// Graph requests must carry a token it issued and has not revoked.
type fakeTenant struct {
	t     *testing.T
	srv   *httptest.Server
	Graph *http.ServeMux

	mu        sync.Mutex
	expiresIn int
	tokenFunc http.HandlerFunc // replaces the token endpoint when set
	issued    []string
	revoked   map[string]bool
	forms     []url.Values
	requests  []string         // RequestURI of every authorised Graph request
	required  bool             // the service principal's appRoleAssignmentRequired
	spFunc    http.HandlerFunc // replaces the service principal's answer when set
}

func newFakeTenant(t *testing.T) *fakeTenant {
	t.Helper()
	ft := &fakeTenant{t: t, Graph: http.NewServeMux(), expiresIn: 3599, revoked: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /"+testTenant+"/oauth2/v2.0/token", ft.serveToken)
	mux.HandleFunc("/v1.0/", ft.serveGraph)
	ft.Graph.HandleFunc("GET /v1.0/servicePrincipals/{id}", ft.serveServicePrincipal)
	ft.srv = httptest.NewServer(mux)
	t.Cleanup(ft.srv.Close)
	return ft
}

func (ft *fakeTenant) URL() string { return ft.srv.URL }

func (ft *fakeTenant) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ft.mu.Lock()
	ft.forms = append(ft.forms, r.PostForm)
	custom := ft.tokenFunc
	ft.mu.Unlock()
	if custom != nil {
		custom(w, r)
		return
	}
	if r.PostForm.Get("client_secret") != testSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client",
			"error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": []int{7000215}})
		return
	}
	ft.mu.Lock()
	tok := tokenPrefix + strconv.Itoa(len(ft.issued)+1)
	ft.issued = append(ft.issued, tok)
	exp := ft.expiresIn
	ft.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": exp, "ext_expires_in": exp, "access_token": tok})
}

func (ft *fakeTenant) serveGraph(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ft.mu.Lock()
	valid := ok && !ft.revoked[tok] && slices.Contains(ft.issued, tok)
	if valid {
		ft.requests = append(ft.requests, r.URL.RequestURI())
	}
	ft.mu.Unlock()
	if !valid {
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure.")
		return
	}
	ft.Graph.ServeHTTP(w, r)
}

// serveServicePrincipal answers the app's service principal, as every
// app-assignments fetch reads it after appRoleAssignedTo.
func (ft *fakeTenant) serveServicePrincipal(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != testSP {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource does not exist.")
		return
	}
	if sel := r.URL.Query().Get("$select"); sel != "appRoleAssignmentRequired" {
		ft.t.Errorf("service principal read with $select=%q", sel)
	}
	ft.mu.Lock()
	required, custom := ft.required, ft.spFunc
	ft.mu.Unlock()
	if custom != nil {
		custom(w, r)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": "x", "appRoleAssignmentRequired": required})
}

func (ft *fakeTenant) SetServicePrincipalFunc(h http.HandlerFunc) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.spFunc = h
}

func (ft *fakeTenant) SetAssignmentRequired(required bool) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.required = required
}

// Revoke makes Graph refuse every token issued so far.
func (ft *fakeTenant) Revoke() {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, tok := range ft.issued {
		ft.revoked[tok] = true
	}
}

func (ft *fakeTenant) TokensIssued() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return len(ft.issued)
}

func (ft *fakeTenant) TokenRequests() []url.Values {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]url.Values(nil), ft.forms...)
}

func (ft *fakeTenant) Requests() []string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]string(nil), ft.requests...)
}

func (ft *fakeTenant) SetTokenFunc(h http.HandlerFunc) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.tokenFunc = h
}

// testEnv is a client wired to a fake tenant with fake time.
type testEnv struct {
	*Client
	tenant  *fakeTenant
	clock   *fakeClock
	sleeper *recordingSleeper
	logs    *syncBuffer
}

func newTestEnv(t *testing.T, ft *fakeTenant, edit func(*Config), opts ...Option) *testEnv {
	t.Helper()
	cfg := Config{
		TenantID: testTenant, ClientID: testClientID, ClientSecret: testSecret,
		AuthorityHost: ft.URL(), GraphURL: ft.URL(), ServicePrincipalID: testSP,
	}
	if edit != nil {
		edit(&cfg)
	}
	clock := newFakeClock()
	sleeper := &recordingSleeper{clock: clock}
	logs := &syncBuffer{}
	base := []Option{
		WithHTTPClient(ft.srv.Client()),
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithClock(clock.Now),
		WithSleep(sleeper.Sleep),
		WithRandom(func() float64 { return 0.5 }),
	}
	c, err := New(cfg, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if s := logs.String(); strings.Contains(s, testSecret) || strings.Contains(s, tokenPrefix) {
			t.Errorf("logs contain a secret or a token:\n%s", s)
		}
	})
	return &testEnv{Client: c, tenant: ft, clock: clock, sleeper: sleeper, logs: logs}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// collection serves items as a Graph collection: pages of min($top,
// maxPage) items linked by absolute nextLinks with an opaque skip token,
// optionally with an empty page after the first. It checks that every
// nextLink comes back verbatim.
type collection struct {
	t         *testing.T
	items     []any
	maxPage   int
	emptyPage bool

	mu     sync.Mutex
	issued map[string]bool
	pages  int
}

func (col *collection) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind, offset := "o", 0
	if skip := q.Get("$skiptoken"); skip != "" {
		col.mu.Lock()
		known := col.issued[r.URL.RequestURI()]
		col.mu.Unlock()
		if !known {
			col.t.Errorf("request %q is not a nextLink this server sent", r.URL.RequestURI())
		}
		_, tail, _ := strings.Cut(skip, "-")
		kind = tail[:1]
		offset, _ = strconv.Atoi(tail[1:])
	}
	top := 100
	if v := q.Get("$top"); v != "" {
		top, _ = strconv.Atoi(v)
	}
	size := min(top, col.maxPage)
	col.mu.Lock()
	col.pages++
	col.mu.Unlock()

	link := func(kind string, offset int) string {
		// %3d%3d must come back as is: a client that re-encodes the
		// query would send == instead.
		l := fmt.Sprintf("http://%s%s?$top=%d&$skiptoken=RFNwdAIAAQ%%3d%%3d-%s%d", r.Host, r.URL.EscapedPath(), top, kind, offset)
		u, _ := url.Parse(l)
		col.mu.Lock()
		if col.issued == nil {
			col.issued = map[string]bool{}
		}
		col.issued[u.RequestURI()] = true
		col.mu.Unlock()
		return l
	}
	body := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"}
	switch {
	case kind == "e":
		body["value"] = []any{}
		body["@odata.nextLink"] = link("o", offset)
	default:
		end := min(offset+size, len(col.items))
		body["value"] = append([]any{}, col.items[offset:end]...)
		if end < len(col.items) {
			if col.emptyPage && offset == 0 {
				body["@odata.nextLink"] = link("e", end)
			} else {
				body["@odata.nextLink"] = link("o", end)
			}
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (col *collection) Pages() int {
	col.mu.Lock()
	defer col.mu.Unlock()
	return col.pages
}

func groupItem(id, name string) map[string]any {
	return map[string]any{"@odata.type": odataGroup, "id": id, "displayName": name}
}

func assignment(principalType, id, name string) map[string]any {
	return map[string]any{"id": "assign-" + id, "principalId": id, "principalType": principalType,
		"principalDisplayName": name, "resourceId": testSP, "appRoleId": "00000000-0000-0000-0000-000000000000"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func graphError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message,
		"innerError": map[string]any{"date": "2025-03-01T12:00:00", "request-id": "r-1"}}})
}
