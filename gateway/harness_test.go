package gateway

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/teamgate/teamgate/sync/fakeentra"
)

// The harness wires the fakes of fakes_test.go, an upstream that records
// what it receives and a fake Entra tenant to a real gateway behind httptest
// servers, and drives it with browser-like and API-like clients.

const (
	testSecret     = "test-session-secret-0123456789abcdef"
	testAdminToken = "admin-token-0123456789"
	testClientID   = "11111111-2222-3333-4444-555555555555"
	testTenantID   = "99999999-8888-7777-6666-555555555555"
)

var (
	aliceID = fakeentra.DemoID("alice")
	bobID   = fakeentra.DemoID("bob")
)

// recorded is one request as the upstream saw it.
type recorded struct {
	Method string
	Path   string
	Header http.Header
}

// upstream is an httptest LiteLLM stand-in. /sse streams one event, then
// waits for release; /slow waits for release before sending headers; /ws
// accepts a WebSocket-style upgrade and echoes lines; everything else
// answers 200. /ndjson streams like /sse without the event-stream type.
type upstream struct {
	srv         *httptest.Server
	release     chan struct{}
	releaseOnce sync.Once
	mu          sync.Mutex
	reqs        []recorded
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{release: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(func() {
		u.releaseAll()
		u.srv.Close()
	})
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.reqs = append(u.reqs, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
	u.mu.Unlock()
	switch r.URL.Path {
	case "/sse", "/ndjson":
		if r.URL.Path == "/sse" {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/x-ndjson") // chunked, no length
		}
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-u.release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: second\n\n")
	case "/slow":
		select {
		case <-u.release:
		case <-r.Context().Done():
		}
	case "/ws":
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		brw.WriteString("echo: " + line)
		brw.Flush()
	case "/empty404":
		w.WriteHeader(http.StatusNotFound)
	default:
		w.Header().Set("X-Request-Id", "upstream-chose-this")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from upstream "+r.URL.Path)
	}
}

// releaseAll lets /sse finish and /slow answer.
func (u *upstream) releaseAll() { u.releaseOnce.Do(func() { close(u.release) }) }

func (u *upstream) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

func (u *upstream) last(t testing.TB) recorded {
	t.Helper()
	reqs := u.requests()
	if len(reqs) == 0 {
		t.Fatal("the upstream received no request")
	}
	return reqs[len(reqs)-1]
}

type harness struct {
	t        testing.TB
	clock    *testClock
	tenant   *fakeentra.Tenant
	store    *memStore
	syncer   *fakeSyncer
	upstream *upstream
	gw       *Gateway
	url      string
	logs     *syncBuffer
}

// setup lets a test adjust the configuration before the gateway starts.
type setup struct {
	cfg    Config
	tenant fakeentra.Config
	deps   Deps
	// issuer overrides the OIDC issuer (e.g. an unreachable one).
	issuer string
	// wrapIDP wraps the fake tenant's handler (e.g. to take it down).
	wrapIDP func(http.Handler) http.Handler
}

func newHarness(t testing.TB, opts ...func(*setup)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newTestClock(), store: newMemStore(), upstream: newUpstream(t), logs: &syncBuffer{}}
	h.syncer = &fakeSyncer{store: h.store, teams: map[string][]TeamRef{
		aliceID: {{ID: fakeentra.DemoID("data-science"), Alias: "Data Science"}, {ID: fakeentra.DemoID("engineering"), Alias: "Engineering"}},
		bobID:   {{ID: fakeentra.DemoID("platform"), Alias: "Platform"}},
	}}

	gwSrv := httptest.NewUnstartedServer(nil)
	t.Cleanup(gwSrv.Close)
	h.url = "http://" + gwSrv.Listener.Addr().String()

	s := &setup{
		tenant: fakeentra.Config{TenantID: testTenantID, ClientID: testClientID, ClientSecret: "client-secret",
			Directory: fakeentra.DemoDirectory(), Now: h.clock.Now,
			RedirectURIs: []string{h.url + "/oauth2/callback"}, PostLogoutRedirectURIs: []string{h.url + "/teamgate/signed-out"}},
		deps: Deps{Syncer: h.syncer, Sessions: h.store, Directory: &fakeDirectory{}, Now: h.clock.Now,
			Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
	}
	s.cfg.Server.PublicURL = h.url
	s.cfg.Upstream.URL = h.upstream.srv.URL
	s.cfg.Session.Secret = testSecret
	s.cfg.Admin.APIToken = testAdminToken
	for _, o := range opts {
		o(s)
	}

	tenant, err := fakeentra.New(s.tenant)
	if err != nil {
		t.Fatal(err)
	}
	var idpHandler http.Handler = tenant
	if s.wrapIDP != nil {
		idpHandler = s.wrapIDP(tenant)
	}
	idp := httptest.NewServer(idpHandler)
	t.Cleanup(idp.Close)
	tenant.SetBaseURL(idp.URL)
	h.tenant = tenant
	issuer := tenant.Issuer()
	if s.issuer != "" {
		issuer = s.issuer
	}

	gw, err := New(t.Context(), s.cfg, OIDCConfig{Issuer: issuer, ClientID: testClientID, ClientSecret: "client-secret"}, s.deps)
	if err != nil {
		t.Fatal(err)
	}
	h.gw = gw
	gwSrv.Config.Handler = gw.Handler()
	gwSrv.Start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", h.logs.String())
		}
	})
	return h
}

// browser returns a client with a cookie jar that follows redirects, like a
// browser, and asks for HTML.
func (h *harness) browser() *http.Client {
	h.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: acceptHTML{http.DefaultTransport}}
}

// acceptHTML adds the Accept header a browser sends on navigation.
type acceptHTML struct{ rt http.RoundTripper }

func (a acceptHTML) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Accept") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	}
	return a.rt.RoundTrip(r)
}

// noFollow returns a copy of c that stops at the first redirect.
func noFollow(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// get performs a GET with extra headers and returns the response with its
// body read.
func (h *harness) get(c *http.Client, path string, headers map[string]string) (*http.Response, string) {
	h.t.Helper()
	return h.do(c, http.MethodGet, path, headers)
}

func (h *harness) do(c *http.Client, method, path string, headers map[string]string) (*http.Response, string) {
	h.t.Helper()
	target := path
	if strings.HasPrefix(path, "/") {
		target = h.url + path
	}
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" { // net/http sends req.Host, never a Host header
			req.Host = v
			continue
		}
		req.Header[k] = append(req.Header[k], v)
	}
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body)
}

// signIn walks the whole sign-in as upn and returns the final response.
func (h *harness) signIn(c *http.Client, upn, rd string) (*http.Response, string) {
	h.t.Helper()
	return h.get(c, "/oauth2/start?rd="+url.QueryEscape(rd)+"&login_hint="+url.QueryEscape(upn), nil)
}

// callbackURL starts a sign-in and follows it to (not into) the callback.
func (h *harness) callbackURL(c *http.Client, upn, rd string) string {
	h.t.Helper()
	nf := noFollow(c)
	res, _ := h.get(nf, "/oauth2/start?rd="+url.QueryEscape(rd)+"&login_hint="+url.QueryEscape(upn), nil)
	if res.StatusCode != http.StatusFound {
		h.t.Fatalf("start: status %d", res.StatusCode)
	}
	res, _ = h.get(nf, res.Header.Get("Location"), nil)
	if res.StatusCode != http.StatusFound {
		h.t.Fatalf("authorize: status %d", res.StatusCode)
	}
	cb := res.Header.Get("Location")
	if !strings.HasPrefix(cb, h.url+"/oauth2/callback?") {
		h.t.Fatalf("authorize redirected to %q, not the callback", cb)
	}
	return cb
}

// sessionCookie returns the client's session cookie value.
func (h *harness) sessionCookie(c *http.Client) string {
	h.t.Helper()
	u, _ := url.Parse(h.url + "/")
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == DefaultCookieName {
			return ck.Value
		}
	}
	return ""
}

// apiClient is a client without cookies or redirects, like curl.
func apiClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// withCookie is a header map carrying a session cookie.
func withCookie(value string, extra map[string]string) map[string]string {
	m := map[string]string{"Cookie": DefaultCookieName + "=" + value}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// readLine reads one line with a bufio.Reader (helper for streaming tests).
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return line
}
