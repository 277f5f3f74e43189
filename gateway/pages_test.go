package gateway

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/teamgate/teamgate/sync/fakeentra"
)

// Handler tests of /teamgate/me, /teamgate/admin and the sign-in page,
// through the real gateway with the fakes of pages_fakes_test.go.

var (
	csrfInput   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	dataScience = fakeentra.DemoID("data-science")
	engineering = fakeentra.DemoID("engineering")
)

func withPages(n int, fp **fakePages) func(*setup) {
	return func(s *setup) {
		*fp = newFakePages(s.deps.Sessions.(*memStore), n)
		s.deps.Pages = *fp
	}
}

// signedInBrowser returns a browser signed in as upn.
func (h *harness) signedInBrowser(upn string) *http.Client {
	h.t.Helper()
	c := h.browser()
	if res, body := h.signIn(c, upn, "/"); res.StatusCode != http.StatusOK {
		h.t.Fatalf("sign-in as %s: %d %s", upn, res.StatusCode, body)
	}
	return c
}

// setPrincipal changes a user's principal as a sync would, and drops the
// gateway's cached copy.
func (h *harness) setPrincipal(userID string, fn func(p *Principal)) {
	h.store.set(func(m *memStore) {
		p := m.principals[userID]
		fn(&p)
		m.principals[userID] = p
	})
	h.gw.InvalidateUser(userID)
}

// csrfToken reads the form token from a page of the client's session.
func (h *harness) csrfToken(c *http.Client, path string) string {
	h.t.Helper()
	res, body := h.get(c, path, nil)
	m := csrfInput.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		h.t.Fatalf("GET %s: %d, no form token:\n%.500s", path, res.StatusCode, body)
	}
	return m[1]
}

// postForm sends a form without following the redirect.
func (h *harness) postForm(c *http.Client, path string, form url.Values, headers map[string]string) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := noFollow(c).Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, res.Body)
	return res, b.String()
}

func wantPage(t *testing.T, res *http.Response, body string, status int, texts ...string) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status = %d, want %d:\n%.800s", res.StatusCode, status, body)
	}
	for _, s := range texts {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q:\n%.1500s", s, body)
		}
	}
}

func TestPagesRequireSignIn(t *testing.T) {
	tests := []struct {
		name       string
		signInPage bool
		method     string
		path       string
		wantStatus int
		wantTarget string // Location, for redirects
		wantText   string
	}{
		{"me goes to Entra", false, http.MethodGet, "/teamgate/me", http.StatusFound, "/oauth2/start?rd=%2Fteamgate%2Fme", ""},
		{"admin goes to Entra", false, http.MethodGet, "/teamgate/admin/events?outcome=error", http.StatusFound, "/oauth2/start?rd=%2Fteamgate%2Fadmin%2Fevents", ""},
		{"me goes to the sign-in page", true, http.MethodGet, "/teamgate/me", http.StatusFound, "/teamgate/sign-in?rd=%2Fteamgate%2Fme", ""},
		{"a form without a session", false, http.MethodPost, "/teamgate/me/default-team", http.StatusUnauthorized, "", "Your session has expired"},
		{"an admin form without a session", false, http.MethodPost, "/teamgate/admin/members/add", http.StatusUnauthorized, "", "Your session has expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fp *fakePages
			h := newHarness(t, withPages(3, &fp), func(s *setup) { s.cfg.Server.SignInPage = tt.signInPage })
			var res *http.Response
			var body string
			if tt.method == http.MethodPost {
				res, body = h.postForm(h.browser(), tt.path, url.Values{"team_id": {"x"}}, nil)
			} else {
				res, body = h.get(noFollow(h.browser()), tt.path, nil)
			}
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if loc := res.Header.Get("Location"); tt.wantTarget != "" && loc != tt.wantTarget {
				t.Errorf("Location = %q, want %q", loc, tt.wantTarget)
			}
			if !strings.Contains(body, tt.wantText) {
				t.Errorf("page lacks %q:\n%.600s", tt.wantText, body)
			}
		})
	}
}

func TestSignInLandingPage(t *testing.T) {
	var fp *fakePages
	h := newHarness(t, withPages(3, &fp), func(s *setup) { s.cfg.Server.SignInPage = true })
	c := h.browser()
	res, _ := h.get(noFollow(c), "/ui/?page=1", nil)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || loc != "/teamgate/sign-in?rd=%2Fui%2F%3Fpage%3D1" {
		t.Fatalf("signed-out page load: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := h.get(c, "/teamgate/sign-in?rd=%2Fui%2F%3Fpage%3D1", nil)
	wantPage(t, res, body, http.StatusOK, "Sign in to continue", `href="/oauth2/start?rd=%2Fui%2F%3Fpage%3D1"`, "Request ID <code>")
	checkPageHeaders(t, res)

	// The link signs in and returns to the page first asked for.
	res, _ = h.get(c, "/oauth2/start?rd=%2Fui%2F%3Fpage%3D1&login_hint=alice@example.com", nil)
	if res.StatusCode != http.StatusOK || res.Request.URL.RequestURI() != "/ui/?page=1" {
		t.Fatalf("after sign-in: %d at %s", res.StatusCode, res.Request.URL)
	}
	// Signed in, the landing page just passes through.
	res, _ = h.get(noFollow(c), "/teamgate/sign-in?rd=%2Fui%2F", nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/" {
		t.Errorf("landing page when signed in: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	// A session that ended server-side: the page says so.
	h.store.set(func(m *memStore) { clear(m.sessions) })
	h.gw.InvalidateUser(aliceID)
	res, _ = h.get(noFollow(c), "/ui/", nil)
	if loc := res.Header.Get("Location"); !strings.Contains(loc, "expired=1") {
		t.Fatalf("stale cookie: redirected to %q, want the expired notice", loc)
	}
	res, body = h.get(c, res.Header.Get("Location"), nil)
	wantPage(t, res, body, http.StatusOK, "Your session has expired")

	// With the page off, the address goes straight to Entra.
	h2 := newHarness(t, withPages(3, &fp))
	res, _ = h2.get(noFollow(h2.browser()), "/teamgate/sign-in?rd=%2Fx", nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/oauth2/start?rd=%2Fx" {
		t.Errorf("sign-in page while off: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func checkPageHeaders(t *testing.T, res *http.Response) {
	t.Helper()
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
}

func TestMePageAndDefaultTeam(t *testing.T) {
	var fp *fakePages
	h := newHarness(t, withPages(3, &fp))
	fp.events = []PageEvent{{UserID: aliceID, Outcome: "ok", MembershipsAdded: []string{dataScience}}}
	alice := h.signedInBrowser("alice@example.com")

	res, body := h.get(alice, "/teamgate/me", nil)
	wantPage(t, res, body, http.StatusOK, "Alice Adams", "alice@example.com", aliceID, "internal_user",
		"Data Science", "Engineering", "act for <strong>Data Science</strong>", "the first of your teams by name",
		"Last sync", "Joined (1)", `href="/oauth2/sign_out"`, "Request ID <code>")
	checkPageHeaders(t, res)
	if strings.Contains(body, `href="/teamgate/admin"`) {
		t.Error("a non-admin's page links to the admin pages")
	}
	h.get(alice, "/v1/models", nil)
	if got := h.upstream.last(t).Header.Get("X-Litellm-Team-Id"); got != dataScience {
		t.Fatalf("team header before choosing = %q, want the first team", got)
	}

	token := h.csrfToken(alice, "/teamgate/me")
	res, body = h.postForm(alice, "/teamgate/me/default-team", url.Values{"csrf_token": {token}, "team_id": {engineering}}, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/teamgate/me?saved=1" {
		t.Fatalf("save default team: %d to %q\n%s", res.StatusCode, res.Header.Get("Location"), body)
	}
	res, body = h.get(alice, "/teamgate/me?saved=1", nil)
	wantPage(t, res, body, http.StatusOK, "Saved. Your requests now act for Engineering", "the default team you chose")
	// The very next request acts for the chosen team (the cache was dropped).
	h.get(alice, "/v1/models", nil)
	if got := h.upstream.last(t).Header.Get("X-Litellm-Team-Id"); got != engineering {
		t.Errorf("team header after choosing = %q, want %q", got, engineering)
	}
	// A request may still name another of the user's teams.
	h.get(alice, "/v1/models", map[string]string{"X-LiteLLM-Team-Id": dataScience})
	if got := h.upstream.last(t).Header.Get("X-Litellm-Team-Id"); got != dataScience {
		t.Errorf("explicit team header = %q", got)
	}

	// Someone else's team is refused and changes nothing.
	res, body = h.postForm(alice, "/teamgate/me/default-team", url.Values{"csrf_token": {token}, "team_id": {fakeentra.DemoID("platform")}}, nil)
	wantPage(t, res, body, http.StatusBadRequest, "not one of your teams")
	// A forged confirmation says nothing.
	h.setPrincipal(aliceID, func(p *Principal) { p.DefaultTeamID = "" })
	if _, body := h.get(alice, "/teamgate/me?saved=1", nil); strings.Contains(body, "Saved.") {
		t.Error("a saved=1 link confirms a choice that was not made")
	}
	// A default that is no longer one of the user's teams falls back to the first.
	h.setPrincipal(aliceID, func(p *Principal) { p.DefaultTeamID = "gone" })
	h.get(alice, "/v1/models", nil)
	if got := h.upstream.last(t).Header.Get("X-Litellm-Team-Id"); got != dataScience {
		t.Errorf("team header with a stale default = %q, want the first team", got)
	}
}

func TestFormsRejectCSRF(t *testing.T) {
	var fp *fakePages
	h := newHarness(t, withPages(3, &fp))
	alice := h.signedInBrowser("alice@example.com")
	bob := h.signedInBrowser("bob@example.com")
	aliceToken := h.csrfToken(alice, "/teamgate/me")
	bobToken := h.csrfToken(bob, "/teamgate/me")
	if aliceToken == bobToken || aliceToken == h.csrfToken(h.signedInBrowser("alice@example.com"), "/teamgate/me") {
		t.Fatal("form tokens must differ per session")
	}
	h.setPrincipal(aliceID, func(p *Principal) { p.Role = "proxy_admin" })
	fp.users = []PageUser{{UserID: bobID, Email: "bob@example.com"}}

	forms := []struct {
		path string
		form url.Values
	}{
		{"/teamgate/me/default-team", url.Values{"team_id": {engineering}}},
		{"/teamgate/admin/members/add", url.Values{"team_id": {"team-000"}, "user": {"bob@example.com"}}},
	}
	attacks := []struct {
		name    string
		token   string
		headers map[string]string
	}{
		{"no token", "", nil},
		{"a wrong token", "AAAA" + aliceToken[4:], nil},
		{"another session's token", bobToken, nil},
		{"a cross-site request", aliceToken, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"a foreign origin", aliceToken, map[string]string{"Origin": "https://evil.example"}},
	}
	for _, f := range forms {
		for _, a := range attacks {
			t.Run(f.path+"/"+a.name, func(t *testing.T) {
				form := url.Values{}
				for k, v := range f.form {
					form[k] = v
				}
				if a.token != "" {
					form.Set("csrf_token", a.token)
				}
				res, body := h.postForm(alice, f.path, form, a.headers)
				wantPage(t, res, body, http.StatusForbidden, "This form has expired")
			})
		}
	}
	if got := fp.recorded(); len(got) != 0 {
		t.Errorf("refused forms changed members: %v", got)
	}
	h.get(alice, "/v1/models", nil)
	if got := h.upstream.last(t).Header.Get("X-Litellm-Team-Id"); got != dataScience {
		t.Errorf("a refused form changed the default team: %q", got)
	}
	// The same form from the page itself (same-origin headers) is accepted.
	res, _ := h.postForm(alice, "/teamgate/me/default-team", url.Values{"csrf_token": {aliceToken}, "team_id": {engineering}},
		map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": h.url})
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("legitimate form: %d", res.StatusCode)
	}
}

func TestPagesOffWithoutSource(t *testing.T) {
	h := newHarness(t)
	c := h.signedInBrowser("alice@example.com")
	for _, path := range []string{"/teamgate/me", "/teamgate/admin"} {
		if res, _ := h.get(c, path, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s without a PageSource: %d, want 404", path, res.StatusCode)
		}
	}
}
