package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// e2e is one running teamgate between a fake Entra tenant and a recording
// upstream, reached over real HTTP.
type e2e struct {
	t        *testing.T
	tenant   *fakeentra.Tenant
	store    store.Store
	app      *app
	gw       *httptest.Server
	upstream *recorder
	logs     *syncBuffer
	adminTok string
}

// recorder is the upstream: it records every request it receives and can
// stream server-sent events on /stream under the test's control.
type recorder struct {
	mu       sync.Mutex
	requests []*http.Request
	events   chan string // /stream sends each value as one event; closed = end
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.requests = append(rc.requests, r.Clone(context.Background()))
	rc.mu.Unlock()
	if r.URL.Path == "/stream" {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rcw := http.NewResponseController(w)
		rcw.Flush()
		for ev := range rc.events {
			fmt.Fprintf(w, "data: %s\n\n", ev)
			rcw.Flush()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
}

func (rc *recorder) last(t *testing.T) *http.Request {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.requests) == 0 {
		t.Fatal("the upstream received no request")
	}
	return rc.requests[len(rc.requests)-1]
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

// syncBuffer collects logs from concurrent handlers.
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

const (
	e2eTenant   = "e2e-tenant"
	e2eClient   = "e2e-client"
	e2eSecret   = "e2e-client-secret-value-1234"
	e2eSessKey  = "e2e-session-secret-0123456789-abcdefghijklmnop"
	e2eAdminKey = "e2e-admin-token-value"
	e2eSP       = "e2e-sp"
)

type e2eOptions struct {
	directory fakeentra.Directory
	tweak     func(*Config)
	// provisionClock is the outbox worker's clock (e2e_provision_test.go).
	provisionClock func() time.Time
	// gatewayClock is the gateway's session clock (background_e2e_test.go).
	gatewayClock func() time.Time
	// wrapTenant wraps the fake tenant's handler (e.g. to watch its
	// answers: secrets_log_test.go).
	wrapTenant func(http.Handler) http.Handler
}

func startE2E(t *testing.T, st store.Store, o e2eOptions) *e2e {
	t.Helper()
	e := &e2e{t: t, store: st, upstream: &recorder{events: make(chan string)}, logs: &syncBuffer{}, adminTok: e2eAdminKey}
	if o.directory.Users == nil {
		o.directory = fakeentra.DemoDirectory()
	}
	var err error
	e.tenant, err = fakeentra.New(fakeentra.Config{
		TenantID: e2eTenant, ClientID: e2eClient, ClientSecret: e2eSecret,
		ServicePrincipalID: e2eSP, Directory: o.directory,
	})
	if err != nil {
		t.Fatal(err)
	}
	var tenantHandler http.Handler = e.tenant
	if o.wrapTenant != nil {
		tenantHandler = o.wrapTenant(e.tenant)
	}
	entra := httptest.NewServer(tenantHandler)
	t.Cleanup(entra.Close)
	e.tenant.SetBaseURL(entra.URL)

	up := httptest.NewServer(e.upstream)
	t.Cleanup(up.Close)

	e.gw = httptest.NewUnstartedServer(nil)
	cfg := defaultConfig()
	cfg.Server.PublicURL = "http://" + e.gw.Listener.Addr().String()
	cfg.Upstream.URL = up.URL
	cfg.Session.Secret = e2eSessKey
	cfg.Admin.APIToken = e2eAdminKey
	cfg.Entra.TenantID, cfg.Entra.ClientID, cfg.Entra.ClientSecret = e2eTenant, e2eClient, e2eSecret
	cfg.Entra.AuthorityHost, cfg.Entra.GraphURL = e.tenant.AuthorityHost(), e.tenant.GraphURL()
	cfg.Entra.ServicePrincipalID = e2eSP
	cfg.Entra.AppGroupsTTL = time.Nanosecond // assignments changed by a test are seen at once
	cfg.Log = LogConfig{Level: "debug", Format: "json"}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := newLogger(LogConfig{Level: "debug", Format: "json"}, e.logs) // the access-line encoder serve uses
	e.app, err = newApp(context.Background(), cfg, log, appOptions{store: st, provisionClock: o.provisionClock, gatewayClock: o.gatewayClock})
	if err != nil {
		t.Fatal(err)
	}
	// Wrapped like serve does with server.metrics_listen set, so every e2e
	// test also proves the metrics wrapper keeps streams and upgrades working.
	e.gw.Config.Handler = e.app.metrics.wrap(e.app.gateway.Handler())
	e.gw.Start()
	t.Cleanup(func() {
		close(e.upstream.events)
		e.gw.Close()
		e.app.Close()
	})
	return e
}

// browser is a cookie-jar client that follows redirects like a browser.
type browser struct {
	t      *testing.T
	client *http.Client
}

func (e *e2e) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, client: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// noRedirects returns a client sharing the jar that stops at the first answer.
func (b *browser) noRedirects() *http.Client {
	return &http.Client{Jar: b.client.Jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (b *browser) get(rawURL string, header ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(b.t, b.client, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenIn   = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// signIn opens path in the browser, follows the redirects to the fake
// tenant's sign-in page, picks the user there and follows the redirects back.
// It returns the final response.
func (b *browser) signIn(gwURL, path, userID string) (*http.Response, string) {
	b.t.Helper()
	res, body := b.get(gwURL + path)
	m := formAction.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("expected the fake tenant's sign-in page, got %d at %s:\n%.600s", res.StatusCode, res.Request.URL, body)
	}
	action, err := res.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.t.Fatal(err)
	}
	form := url.Values{}
	for _, h := range hiddenIn.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	form.Set("fakeentra_user", userID)
	req, _ := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	return do(b.t, b.client, req)
}

// api sends a non-browser request (JSON client) with the browser's cookies.
func (b *browser) api(method, rawURL string, header ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return do(b.t, b.client, req)
}

// admin calls the admin API and decodes the JSON answer into v.
func (e *e2e) admin(path string, v any) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.gw.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.adminTok)
	res, body := do(e.t, http.DefaultClient, req)
	if res.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			e.t.Fatalf("admin %s: %v\n%s", path, err, body)
		}
	}
	return res.StatusCode
}

func forEachBackend(t *testing.T, fn func(t *testing.T, st store.Store)) {
	storetest.ForEachBackend(t, fn)
}
