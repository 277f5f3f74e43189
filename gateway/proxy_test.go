package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/teamgate/teamgate/sync/fakeentra"
)

// signedIn returns a session cookie value for upn.
func (h *harness) signedIn(upn string) string {
	h.t.Helper()
	c := h.browser()
	if res, _ := h.signIn(c, upn, "/"); res.StatusCode != http.StatusOK {
		h.t.Fatalf("sign-in as %s: %d", upn, res.StatusCode)
	}
	return h.sessionCookie(c)
}

// identityHeadersSeen lists the headers of r that teamgate owns, in any
// spelling, with their values.
func identityHeadersSeen(h *harness, r recorded) map[string][]string {
	seen := map[string][]string{}
	for name, v := range r.Header {
		if h.gw.headers.owns(name) {
			seen[name] = v
		}
	}
	return seen
}

var spoofHeaders = map[string]string{
	"X-Forwarded-User":               "evil",
	"x_forwarded_user":               "evil2",
	"X_FORWARDED_USER":               "evil3",
	"X-FORWARDED-EMAIL":              "evil@example.com",
	"x_forwarded_email":              "evil@example.com",
	"X_Forwarded-Preferred-Username": "evil",
	"X-Forwarded-Groups":             "admins",
	"x_forwarded_groups":             "admins",
	"X-Forwarded-Groups_":            "not-a-spoof-but-harmless",
	"x_litellm_team_id":              "foreign-team",
	"X_LITELLM_TEAM_ID":              "foreign-team",
}

func TestSpoofedIdentityHeadersNeverReachUpstream(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedIn("alice@example.com")

	headers := withCookie(cookie, spoofHeaders)
	headers["Connection"] = "X-Forwarded-User, X-Forwarded-Groups, X-LiteLLM-Team-Id"
	res, _ := h.get(apiClient(), "/v1/models", headers)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	seen := identityHeadersSeen(h, h.upstream.last(t))
	// The signed assertion is an identity header too; assertion_test.go
	// checks its content and its own spoof variants.
	if got := seen["X-Teamgate-Assertion"]; len(got) != 1 || strings.Count(got[0], ".") != 2 {
		t.Errorf("X-Teamgate-Assertion = %q, want one JWT", got)
	}
	delete(seen, "X-Teamgate-Assertion")
	want := map[string]string{
		"X-Forwarded-User":               aliceID,
		"X-Forwarded-Email":              "alice@example.com",
		"X-Forwarded-Preferred-Username": "alice@example.com",
		"X-Forwarded-Groups":             fakeentra.DemoID("data-science") + "," + fakeentra.DemoID("engineering"),
		"X-Litellm-Team-Id":              fakeentra.DemoID("data-science"),
	}
	if len(seen) != len(want) {
		t.Errorf("upstream saw identity headers %v, want exactly %v", seen, want)
	}
	for k, v := range want {
		if got := seen[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want [%q]", k, got, v)
		}
	}
}

func TestAPIKeyPassthrough(t *testing.T) {
	tests := []struct {
		name       string
		credential map[string]string
	}{
		{"bearer", map[string]string{"Authorization": "Bearer sk-1234"}},
		{"x-litellm-api-key", map[string]string{"x-litellm-api-key": "sk-1234"}},
		{"api-key", map[string]string{"api-key": "sk-1234"}},
		{"x-api-key", map[string]string{"x-api-key": "sk-1234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			headers := map[string]string{}
			for k, v := range spoofHeaders {
				headers[k] = v
			}
			for k, v := range tt.credential {
				headers[k] = v
			}
			res, _ := h.do(apiClient(), http.MethodPost, "/v1/chat/completions", headers)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			got := h.upstream.last(t)
			if seen := identityHeadersSeen(h, got); len(seen) != 0 {
				t.Errorf("identity headers reached the upstream: %v", seen)
			}
			for k, v := range tt.credential {
				if got.Header.Get(k) != v {
					t.Errorf("credential %s not passed through", k)
				}
			}
		})
	}
}

func TestAPIKeyWinsOverSession(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedIn("alice@example.com")
	res, _ := h.get(apiClient(), "/v1/models", withCookie(cookie, map[string]string{
		"Authorization": "Bearer sk-1234", "Cookie": "other=1",
	}))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := h.upstream.last(t)
	if seen := identityHeadersSeen(h, got); len(seen) != 0 {
		t.Errorf("identity injected for an API-key request: %v", seen)
	}
	if c := strings.Join(got.Header.Values("Cookie"), "; "); strings.Contains(c, DefaultCookieName) || !strings.Contains(c, "other=1") {
		t.Errorf("Cookie upstream = %q; want teamgate's removed, others kept", c)
	}
}

func TestSessionCookieNotForwarded(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedIn("alice@example.com")
	h.get(apiClient(), "/v1/models", withCookie(cookie, nil))
	if c := h.upstream.last(t).Header.Get("Cookie"); c != "" {
		t.Errorf("upstream received Cookie %q", c)
	}
}

func TestTeamSelectionThroughProxy(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedIn("alice@example.com")
	engineering := fakeentra.DemoID("engineering")

	res, _ := h.get(apiClient(), "/v1/models", withCookie(cookie, map[string]string{"x-litellm-team-id": engineering}))
	if res.StatusCode != http.StatusOK || h.upstream.last(t).Header.Get("X-Litellm-Team-Id") != engineering {
		t.Fatalf("own team: %d, upstream team %q", res.StatusCode, h.upstream.last(t).Header.Get("X-Litellm-Team-Id"))
	}

	before := len(h.upstream.requests())
	finance := fakeentra.DemoID("finance")
	res, body := h.get(apiClient(), "/v1/models", withCookie(cookie, map[string]string{"X-LiteLLM-Team-Id": finance}))
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign team: %d", res.StatusCode)
	}
	var got struct {
		Error struct{ Message, Type, RequestID string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if got.Error.Message != "not a member of team "+finance || got.Error.Type != "forbidden" {
		t.Errorf("error = %+v", got.Error)
	}
	if len(h.upstream.requests()) != before {
		t.Error("a foreign-team request reached the upstream")
	}
}

func TestUserWithoutTeamsGetsNoTeamHeader(t *testing.T) {
	h := newHarness(t)
	cookie := h.signedIn("carol@example.com") // the fake syncer gives carol no team
	h.get(apiClient(), "/v1/models", withCookie(cookie, nil))
	got := h.upstream.last(t)
	if got.Header.Get("X-Forwarded-User") != fakeentra.DemoID("carol") {
		t.Fatalf("user header = %q", got.Header.Get("X-Forwarded-User"))
	}
	if _, ok := got.Header["X-Litellm-Team-Id"]; ok {
		t.Error("a team header was sent for a user without teams")
	}
	if _, ok := got.Header["X-Forwarded-Groups"]; ok {
		t.Error("a groups header was sent for a user without teams")
	}
}

func TestUnauthenticatedRequests(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		path         string
		accept       string
		wantStatus   int
		wantLocation string
	}{
		{"browser page", http.MethodGet, "/ui/?x=1", "text/html", http.StatusFound, "/oauth2/start?rd=%2Fui%2F%3Fx%3D1"},
		{"browser head", http.MethodHead, "/ui/", "text/html,*/*", http.StatusFound, "/oauth2/start?rd=%2Fui%2F"},
		{"browser odd path", http.MethodGet, "//evil.example/x", "text/html", http.StatusFound, "/oauth2/start?rd=%2F"},
		{"browser post", http.MethodPost, "/ui/", "text/html", http.StatusUnauthorized, ""},
		{"api call", http.MethodGet, "/v1/models", "application/json", http.StatusUnauthorized, ""},
		{"no accept", http.MethodPost, "/v1/chat/completions", "", http.StatusUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			headers := map[string]string{}
			if tt.accept != "" {
				headers["Accept"] = tt.accept
			}
			res, body := h.do(apiClient(), tt.method, tt.path, headers)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if loc := res.Header.Get("Location"); loc != tt.wantLocation {
				t.Errorf("Location = %q, want %q", loc, tt.wantLocation)
			}
			if tt.wantStatus == http.StatusUnauthorized {
				if tt.accept != "text/html" && !strings.Contains(body, `"type":"unauthorized"`) {
					t.Errorf("body = %s", body)
				}
				if res.Header.Get("WWW-Authenticate") == "" && tt.accept != "text/html" {
					t.Error("401 without WWW-Authenticate")
				}
			}
			if n := len(h.upstream.requests()); n != 0 {
				t.Errorf("upstream received %d requests", n)
			}
		})
	}
}
