package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// csrfExempt are state-changing routes that need no CSRF check, and why.
var csrfExempt = map[string]string{}

// Every state-changing route, found by listing the router rather than by
// hand, refuses a forged cross-site request from a signed-in administrator:
// cookie-authenticated forms need a same-origin request and the session's
// form token; the admin API needs its bearer token whatever cookies come
// along. A new route fails this test until it is protected or exempted.
func TestEveryStateChangingRouteRefusesCSRF(t *testing.T) {
	var fp *fakePages
	h := newHarness(t, withPages(3, &fp))
	admin := h.signedInBrowser("alice@example.com")
	h.setPrincipal(aliceID, func(p *Principal) { p.Role = "proxy_admin" })
	token := h.csrfToken(admin, "/teamgate/me")
	fp.users = []PageUser{{UserID: bobID, Email: "bob@example.com"}}
	fp.members["team-000"] = []PageMember{{UserID: bobID, Source: "manual"}}
	sessionsBefore := h.store.sessionCount()

	attacks := []struct {
		name    string
		token   string
		headers map[string]string
	}{
		{"cross-site with a valid token", token, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"foreign origin with a valid token", token, map[string]string{"Origin": "https://evil.example"}},
		{"same-site subdomain with a valid token", token, map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"same origin without a token", "", map[string]string{"Sec-Fetch-Site": "same-origin"}},
		{"no browser headers and no token", "", nil},
	}
	checked := 0
	for _, rt := range h.gw.engine.Routes() {
		if rt.Method == http.MethodGet || rt.Method == http.MethodHead {
			continue
		}
		key := rt.Method + " " + rt.Path
		if why, ok := csrfExempt[key]; ok {
			t.Logf("%s: exempt: %s", key, why)
			continue
		}
		path := strings.NewReplacer(":user_id", bobID, ":team_id", "team-000", ":id", "1").Replace(rt.Path)
		form := url.Values{"team_id": {"team-000"}, "user": {"bob@example.com"}, "user_id": {bobID}}
		for _, a := range attacks {
			t.Run(key+"/"+a.name, func(t *testing.T) {
				checked++
				f := url.Values{}
				for k, v := range form {
					f[k] = v
				}
				if a.token != "" {
					f.Set(csrfField, a.token)
				}
				res, body := h.postForm(admin, path, f, a.headers)
				switch {
				case strings.HasPrefix(rt.Path, "/teamgate/api/"):
					if res.StatusCode != http.StatusUnauthorized {
						t.Errorf("admin API with a session cookie and no bearer token: %d %.200s", res.StatusCode, body)
					}
				default:
					if res.StatusCode != http.StatusForbidden {
						t.Errorf("forged form: %d, want 403: %.300s", res.StatusCode, body)
					}
				}
			})
		}
	}
	if checked == 0 {
		t.Fatal("no state-changing route found: the router listing is broken")
	}
	if got := fp.recorded(); len(got) != 0 {
		t.Errorf("forged requests changed members: %v", got)
	}
	if n := h.store.sessionCount(); n != sessionsBefore {
		t.Errorf("forged requests changed sessions: %d → %d", sessionsBefore, n)
	}
	h.get(admin, "/v1/models", nil)
	if got := h.upstream.last(t).Header.Get("X-Litellm-Team-Id"); got != dataScience {
		t.Errorf("a forged request changed the default team: %q", got)
	}
}
