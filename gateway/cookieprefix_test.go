package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestValidateCookieNamePrefixes(t *testing.T) {
	tests := []struct {
		name, publicURL string
		wantErr         []string // substrings of the session.cookie_name error; nil: valid
	}{
		{"teamgate_session", "http://localhost:4180", nil},
		{"__Host-teamgate_session", "https://llm.example.com", nil},
		{"__Host-tg", "HTTPS://llm.example.com", nil},
		{"__Secure-tg", "https://llm.example.com", nil},
		{"__Host-tg", "http://localhost:4180", []string{`"__Host-"`, "https server.public_url", "Path=/"}},
		{"__Secure-tg", "http://localhost:4180", []string{`"__Secure-"`, "https server.public_url", "Secure"}},
		{"__host-tg", "https://llm.example.com", []string{`exactly "__Host-"`, `"__host-tg"`}},
		{"__HOST-tg", "https://llm.example.com", []string{`exactly "__Host-"`}},
		{"__secure-tg", "https://llm.example.com", []string{`exactly "__Secure-"`}},
		{"__SeCuRe-tg", "http://localhost:4180", []string{`exactly "__Secure-"`}},
		{"_Host-tg", "http://localhost:4180", nil}, // not a prefix browsers know
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+tt.publicURL, func(t *testing.T) {
			c := validConfig()
			c.Session.CookieName = tt.name
			c.Server.PublicURL = tt.publicURL
			err := c.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "session.cookie_name: ") || strings.Contains(msg, "\n") {
				t.Errorf("want one session.cookie_name error, got %q", msg)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestStateCookieNamePrefix(t *testing.T) {
	for name, want := range map[string]string{
		"teamgate_session": "teamgate_session_state_",
		"__Host-tg":        "__Secure-tg_state_",
		"__host-tg":        "__Secure-tg_state_", // refused by Validate; still valid if given
		"__Secure-tg":      "__Secure-tg_state_",
	} {
		if got := stateCookieNamePrefix(name); got != want {
			t.Errorf("stateCookieNamePrefix(%q) = %q, want %q", name, got, want)
		}
	}
}

// checkBrowserAccepts fails unless a browser would store the cookie set by
// line, received from an https origin: the prefix rules of RFC 6265bis
// (matched without regard to case, as browsers do since 2024).
func checkBrowserAccepts(t *testing.T, line string) *http.Cookie {
	t.Helper()
	c, err := http.ParseSetCookie(line)
	if err != nil {
		t.Fatalf("Set-Cookie %q: %v", line, err)
	}
	if hasPrefixFold(c.Name, "__Secure-") && !c.Secure {
		t.Errorf("browsers reject %q: a __Secure- cookie needs Secure", line)
	}
	if hasPrefixFold(c.Name, "__Host-") && (!c.Secure || c.Path != "/" || c.Domain != "") {
		t.Errorf("browsers reject %q: a __Host- cookie needs Secure, Path=/ and no Domain", line)
	}
	return c
}

// TestHostPrefixedSessionCookieSignIn runs sign-in, a proxied request and
// sign-out with session.cookie_name "__Host-tg" behind an https public URL
// (a TLS-terminating proxy in front of the test's plain-HTTP gateway), and
// checks every cookie teamgate sets would be kept by a browser.
func TestHostPrefixedSessionCookieSignIn(t *testing.T) {
	const public = "https://gw.example"
	const name = "__Host-tg"
	h := newHarness(t, func(s *setup) {
		s.cfg.Server.PublicURL = public
		s.cfg.Session.CookieName = name
		s.tenant.RedirectURIs = append(s.tenant.RedirectURIs, public+"/oauth2/callback")
		s.tenant.PostLogoutRedirectURIs = append(s.tenant.PostLogoutRedirectURIs, public+"/teamgate/signed-out")
	})
	client := apiClient() // cookies are handled by hand: the jar would keep Secure ones off http
	jar := map[string]string{}
	keep := func(res *http.Response) []*http.Cookie {
		var set []*http.Cookie
		for _, line := range res.Header.Values("Set-Cookie") {
			c := checkBrowserAccepts(t, line)
			set = append(set, c)
			if c.MaxAge < 0 {
				delete(jar, c.Name)
			} else {
				jar[c.Name] = c.Value
			}
		}
		return set
	}
	cookieHeader := func() map[string]string {
		var parts []string
		for k, v := range jar {
			parts = append(parts, k+"="+v)
		}
		return map[string]string{"Cookie": strings.Join(parts, "; ")}
	}

	res, _ := h.get(client, "/oauth2/start?rd=%2Fui%2F&login_hint=alice%40example.com", nil)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("start: %d", res.StatusCode)
	}
	set := keep(res)
	if len(set) != 1 || !strings.HasPrefix(set[0].Name, "__Secure-tg_state_") || set[0].Path != "/oauth2/" || set[0].MaxAge <= 0 {
		t.Fatalf("start set %+v, want one __Secure-tg_state_… cookie for /oauth2/", set)
	}

	res, _ = h.get(client, res.Header.Get("Location"), nil) // Entra's authorize, signing alice in at once
	cb, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(cb.String(), public+"/oauth2/callback?") {
		t.Fatalf("authorize: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := h.get(client, "/oauth2/callback?"+cb.RawQuery, cookieHeader())
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/" {
		t.Fatalf("callback: %d to %q\n%s", res.StatusCode, res.Header.Get("Location"), body)
	}
	set = keep(res)
	var session, stateGone bool
	for _, c := range set {
		switch {
		case c.Name == name && c.MaxAge > 0 && c.Path == "/" && c.Secure && c.HttpOnly:
			session = true
		case strings.HasPrefix(c.Name, "__Secure-tg_state_") && c.MaxAge < 0 && c.Path == "/oauth2/":
			stateGone = true
		}
	}
	if !session || !stateGone || len(jar) != 1 || jar[name] == "" {
		t.Fatalf("callback set %+v; want the session cookie and the state cookie deleted (jar %v)", set, jar)
	}

	if res, _ := h.get(client, "/v1/models", cookieHeader()); res.StatusCode != http.StatusOK {
		t.Fatalf("signed-in request: %d", res.StatusCode)
	}
	if c := h.upstream.last(t).Header.Get("Cookie"); c != "" {
		t.Errorf("the upstream received Cookie %q", c)
	}

	res, _ = h.get(client, "/oauth2/sign_out", cookieHeader())
	if res.StatusCode != http.StatusFound {
		t.Fatalf("sign-out: %d", res.StatusCode)
	}
	keep(res)
	if len(jar) != 0 {
		t.Errorf("sign-out left cookies %v", jar)
	}
	if h.store.sessionCount() != 0 {
		t.Error("the session survived sign-out")
	}
}
