package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Another site cannot sign a user out: its links to GET /oauth2/sign_out
// show a confirmation page, and a POST needs the session's form token from
// a same-origin page. teamgate's own links, typed URLs and plain clients
// still sign out with GET, as the public contract says.
func TestSignOutRefusesForcedLogout(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	h.signIn(c, "alice@example.com", "/")
	cookie := h.sessionCookie(c)
	alive := func(when string) {
		t.Helper()
		if res, _ := h.get(apiClient(), "/v1/models", withCookie(cookie, nil)); res.StatusCode != http.StatusOK || h.store.sessionCount() != 1 {
			t.Fatalf("%s: the session ended (request %d, %d sessions)", when, res.StatusCode, h.store.sessionCount())
		}
	}

	var token string
	for name, headers := range map[string]map[string]string{
		"Sec-Fetch-Site cross-site":                {"Sec-Fetch-Site": "cross-site"},
		"Sec-Fetch-Site same-site":                 {"Sec-Fetch-Site": "same-site"},
		"foreign Origin, no Sec-Fetch":             {"Origin": "https://evil.example"},
		"opaque Origin":                            {"Origin": "null"},
		"foreign Referer, no Sec-Fetch":            {"Referer": "https://evil.example/page.html"},
		"cross-site despite an own-origin Referer": {"Sec-Fetch-Site": "cross-site", "Referer": h.url + "/teamgate/me"},
	} {
		t.Run("confirm/"+name, func(t *testing.T) {
			res, body := h.get(noFollow(c), "/oauth2/sign_out", headers)
			wantPage(t, res, body, http.StatusOK, "Sign out of teamgate?", "Another site sent you",
				`<form class="inline" method="post" action="/oauth2/sign_out">`, "Stay signed in",
				"Request ID <code>"+res.Header.Get("X-Request-Id")+"</code>")
			checkPageHeaders(t, res)
			// Browsers check form-action on the redirect to Entra too.
			if csp, want := res.Header.Get("Content-Security-Policy"), "form-action 'self' "+originOf(h.tenant.LogoutURL())+";"; !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
			if res.Header.Get("Set-Cookie") != "" {
				t.Errorf("the confirmation page touched the cookie: %q", res.Header.Get("Set-Cookie"))
			}
			m := csrfInput.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("no form token on the confirmation page:\n%s", body)
			}
			token = m[1]
			alive("after " + name)
		})
	}
	if token == "" {
		t.Fatal("no confirmation page was shown")
	}

	// Forged confirmations change nothing.
	other := h.browser()
	h.signIn(other, "bob@example.com", "/")
	otherToken := h.gw.csrf.token(hashSessionID(mustDecode(t, h, h.sessionCookie(other))))
	for name, f := range map[string]struct {
		token   string
		headers map[string]string
	}{
		"same origin without a token":   {"", map[string]string{"Sec-Fetch-Site": "same-origin"}},
		"no browser headers, no token":  {"", nil},
		"cross-site with the token":     {token, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"foreign Origin with the token": {token, map[string]string{"Origin": "https://evil.example"}},
		"another session's token":       {otherToken, map[string]string{"Sec-Fetch-Site": "same-origin"}},
	} {
		t.Run("forged/"+name, func(t *testing.T) {
			res, body := h.postForm(c, "/oauth2/sign_out", url.Values{csrfField: {f.token}}, f.headers)
			wantPage(t, res, body, http.StatusForbidden, "This form has expired")
			if res, _ := h.get(apiClient(), "/v1/models", withCookie(cookie, nil)); res.StatusCode != http.StatusOK {
				t.Fatalf("a forged sign-out ended the session: %d", res.StatusCode)
			}
		})
	}

	// The user's own confirmation signs out.
	res, _ := h.postForm(c, "/oauth2/sign_out", url.Values{csrfField: {token}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), h.tenant.LogoutURL()) {
		t.Fatalf("confirmed sign-out: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := h.get(apiClient(), "/v1/models", withCookie(cookie, nil)); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the confirmed sign-out the old cookie gets %d", res.StatusCode)
	}

	// Without a session there is nothing to protect, but a cross-site POST
	// still does not start Entra's sign-out.
	res, _ = h.postForm(apiClient(), "/oauth2/sign_out", nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST without a session: %d, want 403", res.StatusCode)
	}
	res, body := h.get(noFollow(h.browser()), "/oauth2/sign_out", map[string]string{"Sec-Fetch-Site": "cross-site"})
	wantPage(t, res, body, http.StatusOK, "Sign out of teamgate?")
}

// Sign-out links of teamgate's own pages and of the proxied application,
// typed or bookmarked URLs, and clients that send no browser headers still
// sign out with GET.
func TestSignOutGETFromOwnOriginSignsOut(t *testing.T) {
	h := newHarness(t)
	for name, headers := range map[string]map[string]string{
		"Sec-Fetch-Site same-origin": {"Sec-Fetch-Site": "same-origin"},
		"Sec-Fetch-Site none":        {"Sec-Fetch-Site": "none"},
		"no browser headers":         nil,
		"own Referer":                {"Referer": h.url + "/teamgate/me"},
		"own Origin":                 {"Origin": h.url},
	} {
		t.Run(name, func(t *testing.T) {
			c := h.browser()
			h.signIn(c, "alice@example.com", "/")
			before := h.store.sessionCount()
			req, _ := http.NewRequest(http.MethodGet, h.url+"/oauth2/sign_out", nil)
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			res, err := noFollow(c).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusFound || h.store.sessionCount() != before-1 || h.sessionCookie(c) != "" {
				t.Errorf("sign-out: %d, sessions %d → %d, cookie kept %v", res.StatusCode, before, h.store.sessionCount(), h.sessionCookie(c) != "")
			}
		})
	}
}

// Behind a proxy that rewrites Host, the public URL's origin is still
// teamgate's own.
func TestForeignRequest(t *testing.T) {
	g := &Gateway{publicURL: "https://gate.example.com"}
	for _, c := range []struct {
		host    string
		headers map[string]string
		foreign bool
	}{
		{"internal:8080", map[string]string{"Referer": "https://gate.example.com/ui/"}, false},
		{"internal:8080", map[string]string{"Origin": "https://gate.example.com"}, false},
		{"internal:8080", map[string]string{"Origin": "http://gate.example.com"}, true},
		{"internal:8080", map[string]string{"Referer": "https://gate.example.com.evil.example/"}, true},
		{"gate.example.com", map[string]string{"Referer": "https://gate.example.com/teamgate/me"}, false},
		{"gate.example.com", map[string]string{"Referer": "not a url"}, true},
		{"gate.example.com", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"}, false},
		{"gate.example.com", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{"gate.example.com", nil, false},
		// Only a navigation is the user asking: an <img>, a script or a
		// fetch of the link from the proxied app's own pages is not.
		{"gate.example.com", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}, false},
		{"gate.example.com", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}, false},
		{"gate.example.com", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}, true},
		{"gate.example.com", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}, true},
		{"gate.example.com", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}, true},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://"+c.host+"/oauth2/sign_out", nil)
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		if got := g.foreignRequest(r); got != c.foreign {
			t.Errorf("Host %s, %v: foreign = %v, want %v", c.host, c.headers, got, c.foreign)
		}
	}
}

func mustDecode(t *testing.T, h *harness, cookie string) string {
	t.Helper()
	id, ok := h.gw.sessions.cookies.decode(cookie)
	if !ok {
		t.Fatal("cannot decode the session cookie")
	}
	return id
}
