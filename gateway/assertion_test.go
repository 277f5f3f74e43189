package gateway

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/teamgate/teamgate/gateway/assertion"
	"github.com/teamgate/teamgate/gateway/assertion/assertiontest"
	"github.com/teamgate/teamgate/sync/fakeentra"
)

// The upstream's view: what a verifier configured with teamgate's JWKS URL,
// public URL as issuer and upstream URL as audience accepts.
func (h *harness) verifier() assertiontest.Verifier {
	return assertiontest.Verifier{
		JWKSURL:  h.url + JWKSPath,
		Issuer:   h.url,
		Audience: h.upstream.srv.URL,
		Now:      h.clock.Now,
	}
}

// assertionSeen returns every value of the assertion header the upstream
// received, in any spelling of its name.
func assertionSeen(r recorded) []string {
	var out []string
	for name, v := range r.Header {
		if normalizeHeaderName(name) == "x-teamgate-assertion" {
			out = append(out, v...)
		}
	}
	return out
}

// proxiedAssertion sends one API request with the cookie and returns the
// assertion the upstream received.
func (h *harness) proxiedAssertion(cookie string, extra map[string]string) string {
	h.t.Helper()
	res, body := h.get(apiClient(), "/v1/models", withCookie(cookie, extra))
	if res.StatusCode != http.StatusOK {
		h.t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	got := assertionSeen(h.upstream.last(h.t))
	if len(got) != 1 {
		h.t.Fatalf("upstream received assertions %q, want exactly one", got)
	}
	return got[0]
}

func TestAssertionCarriesTheSignedInIdentity(t *testing.T) {
	h := newHarness(t)
	cookie := h.sessionFor("alice@example.com")
	dataScience, engineering := fakeentra.DemoID("data-science"), fakeentra.DemoID("engineering")

	tests := []struct {
		name     string
		headers  map[string]string
		wantTeam string
	}{
		{"default team", nil, dataScience},
		{"team chosen by the client", map[string]string{"X-LiteLLM-Team-Id": engineering}, engineering},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwt := h.proxiedAssertion(cookie, tt.headers)
			up := h.upstream.last(t)
			got, err := h.verifier().Verify(t.Context(), jwt)
			if err != nil {
				t.Fatal(err)
			}
			iat := h.clock.Now().Add(-assertion.Backdate).Unix()
			c := got.Claims
			checks := []struct {
				claim     string
				got, want any
			}{
				{"iss", c.Issuer, h.url},
				{"aud", c.Audience, h.upstream.srv.URL},
				{"sub", c.Subject, aliceID},
				{"user_id", c.UserID, aliceID},
				{"email", c.Email, up.Header.Get("X-Forwarded-Email")},
				{"name", c.Name, "Alice Adams"},
				{"team_id", c.TeamID, tt.wantTeam},
				{"team_id = team header", c.TeamID, up.Header.Get("X-Litellm-Team-Id")},
				{"teams", strings.Join(c.Teams, ","), up.Header.Get("X-Forwarded-Groups")},
				{"teams_overflow", c.TeamsOverflow, false},
				{"iat", c.IssuedAt, iat},
				{"nbf", c.NotBefore, iat},
				{"exp", c.Expiry, iat + 300},
				{"jti set", c.ID != "", true},
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("%s = %v, want %v", ch.claim, ch.got, ch.want)
				}
			}
			if c.Email != "alice@example.com" {
				t.Errorf("email = %q", c.Email)
			}
		})
	}

	// An independent verifier, go-oidc's remote key set, agrees.
	jwt := h.proxiedAssertion(cookie, nil)
	keys := oidc.NewRemoteKeySet(t.Context(), h.url+JWKSPath)
	v := oidc.NewVerifier(h.url, keys, &oidc.Config{ClientID: h.upstream.srv.URL, SupportedSigningAlgs: []string{"ES256"}, Now: h.clock.Now})
	tok, err := v.Verify(t.Context(), jwt)
	if err != nil {
		t.Fatalf("go-oidc refused the assertion: %v", err)
	}
	var claims struct {
		UserID string   `json:"user_id"`
		Teams  []string `json:"teams"`
	}
	if err := tok.Claims(&claims); err != nil || tok.Subject != aliceID || claims.UserID != aliceID || len(claims.Teams) != 2 {
		t.Errorf("go-oidc read sub %q, claims %+v, %v", tok.Subject, claims, err)
	}
}

func TestAssertionVerifierRejects(t *testing.T) {
	h := newHarness(t)
	jwt := h.proxiedAssertion(h.sessionFor("alice@example.com"), nil)
	other := h.verifier()
	other.Audience = "https://another-service.example.com"
	later := h.verifier()
	later.Now = func() time.Time { return h.clock.Now().Add(5 * time.Minute) }

	tests := []struct {
		name  string
		v     assertiontest.Verifier
		token string
		want  string
	}{
		{"tampered", h.verifier(), swapPayload(jwt, h.proxiedAssertion(h.sessionFor("bob@example.com"), nil)), "signature"},
		{"expired", later, jwt, "expired"},
		{"another audience", other, jwt, "audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.v.Verify(t.Context(), tt.token); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := h.verifier().Verify(t.Context(), jwt); err != nil {
		t.Errorf("the untouched assertion was refused: %v", err)
	}
}

// swapPayload puts the payload of b (a genuine assertion of someone else)
// under the header and signature of a.
func swapPayload(a, b string) string {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	return pa[0] + "." + pb[1] + "." + pa[2]
}

// signedInWith stores a principal and returns a cookie for a session of it.
func (h *harness) signedInWith(p Principal) string {
	h.t.Helper()
	h.store.set(func(m *memStore) { m.principals[p.UserID] = p })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if err := h.gw.sessions.create(req.Context(), rec, req, p.UserID, time.Hour); err != nil {
		h.t.Fatal(err)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == DefaultCookieName {
			return c.Value
		}
	}
	h.t.Fatal("no cookie set")
	return ""
}

func TestAssertionTeamsCappedLikeTheGroupsHeader(t *testing.T) {
	h := newHarness(t, func(s *setup) { s.cfg.Upstream.GroupsMaxBytes = 100 })
	p := Principal{UserID: "u-many", Email: "many@example.com"}
	for i := range 5 {
		p.Teams = append(p.Teams, TeamRef{ID: fakeentra.DemoID(string(rune('a' + i))), Alias: string(rune('A' + i))})
	}
	jwt := h.proxiedAssertion(h.signedInWith(p), nil)
	got, err := h.verifier().Verify(t.Context(), jwt)
	if err != nil {
		t.Fatal(err)
	}
	groups := strings.Split(h.upstream.last(t).Header.Get("X-Forwarded-Groups"), ",")
	if len(got.Teams) != 2 || !slices.Equal(got.Teams, groups) || !got.TeamsOverflow {
		t.Errorf("teams %v overflow %v; groups header %v; want the same 2 ids and teams_overflow", got.Teams, got.TeamsOverflow, groups)
	}
	if got.TeamID != p.Teams[0].ID {
		t.Errorf("team_id = %q, want %q", got.TeamID, p.Teams[0].ID)
	}
}

func TestAssertionReusedPerSessionAndTeam(t *testing.T) {
	h := newHarness(t)
	cookie := h.sessionFor("alice@example.com")
	engineering := map[string]string{"X-LiteLLM-Team-Id": fakeentra.DemoID("engineering")}
	first := h.proxiedAssertion(cookie, nil)
	signed := h.gw.assert.cache.Signed()

	steps := []struct {
		name     string
		advance  time.Duration
		headers  map[string]string
		wantSame bool
	}{
		{"second request", 0, nil, true},
		{"another team", 0, engineering, false},
		// Past session.cache_ttl the session is read again; it says the
		// same, so the assertion stays.
		{"after the session cache refreshed", time.Minute, nil, true},
		{"a third of the lifetime left", 2*time.Minute + 11*time.Second, nil, false},
	}
	last := first
	for _, st := range steps {
		h.clock.Advance(st.advance)
		got := h.proxiedAssertion(cookie, st.headers)
		if (got == last) != st.wantSame {
			t.Errorf("%s: same assertion = %v, want %v", st.name, got == last, st.wantSame)
		}
		if st.headers == nil {
			last = got // the default team's current assertion
		}
	}
	if n := h.gw.assert.cache.Signed() - signed; n != 2 {
		t.Errorf("signed %d assertions, want 2 (another team, renewal)", n)
	}
	// A sign-in (or sync) of the user drops the cached assertions.
	h.gw.InvalidateUser(aliceID)
	if got := h.proxiedAssertion(cookie, nil); got == last {
		t.Error("the assertion survived InvalidateUser")
	}
}

// sessionFor signs upn in through the browser flow and returns the session
// cookie's value.
func (h *harness) sessionFor(upn string) string {
	h.t.Helper()
	c := h.browser()
	if res, _ := h.signIn(c, upn, "/"); res.StatusCode != http.StatusOK {
		h.t.Fatalf("sign-in as %s: %d", upn, res.StatusCode)
	}
	return h.sessionCookie(c)
}
