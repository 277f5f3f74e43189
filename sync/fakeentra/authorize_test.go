package fakeentra

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// authorizeParams is a valid authorize request for alice.
func authorizeParams() url.Values {
	return url.Values{
		"client_id": {testClient}, "response_type": {"code"}, "redirect_uri": {testRedirect},
		"scope": {"openid profile email"}, "state": {"st"}, "nonce": {"nn"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
		"login_hint": {"alice@example.com"},
	}
}

func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	unassigned := smallDirectory()
	unassigned.AppAssignments = []string{"g-mkt"}
	requiredInDirectory := smallDirectory()
	requiredInDirectory.AppAssignments = []string{"g-mkt"}
	requiredInDirectory.AssignmentRequired = true
	disabled := smallDirectory()
	disabled.Users[0].Disabled = true // alice
	tests := []struct {
		name       string
		cfg        Config
		edit       func(url.Values)
		wantStatus int    // 302: error redirect; otherwise an error page
		wantError  string // error param of the redirect, or text on the page
		wantDesc   string // prefix of error_description
	}{
		{name: "missing code_challenge", edit: func(v url.Values) { v.Del("code_challenge") },
			wantStatus: 302, wantError: "invalid_request", wantDesc: "AADSTS9002325"},
		{name: "plain method", edit: func(v url.Values) { v.Set("code_challenge_method", "plain") },
			wantStatus: 302, wantError: "invalid_request", wantDesc: "AADSTS501491"},
		{name: "token response type", edit: func(v url.Values) { v.Set("response_type", "token") },
			wantStatus: 302, wantError: "unsupported_response_type", wantDesc: "AADSTS700051"},
		{name: "unassigned user", cfg: Config{AssignmentRequired: true, Directory: unassigned},
			wantStatus: 302, wantError: "access_denied", wantDesc: "AADSTS50105: "},
		{name: "unassigned user, assignment required by the directory", cfg: Config{Directory: requiredInDirectory},
			wantStatus: 302, wantError: "access_denied", wantDesc: "AADSTS50105: "},
		{name: "silent without user", edit: func(v url.Values) { v.Del("login_hint"); v.Set("prompt", "none") },
			wantStatus: 302, wantError: "login_required", wantDesc: "AADSTS50058"},
		{name: "disabled user", cfg: Config{Directory: disabled},
			wantStatus: 400, wantError: "AADSTS50057"},
		{name: "disabled user, silent", cfg: Config{Directory: disabled}, edit: func(v url.Values) { v.Set("prompt", "none") },
			wantStatus: 302, wantError: "interaction_required", wantDesc: "AADSTS50057"},
		{name: "unknown login_hint gets the picker", edit: func(v url.Values) { v.Set("login_hint", "gone@example.com") },
			wantStatus: 200, wantError: "AADSTS50034"},
		{name: "unknown client", edit: func(v url.Values) { v.Set("client_id", "someone-else") },
			wantStatus: 400, wantError: "AADSTS700016"},
		{name: "unregistered redirect", cfg: Config{RedirectURIs: []string{"https://other.example/cb"}},
			wantStatus: 400, wantError: "AADSTS50011"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := startTenant(t, tc.cfg)
			params := authorizeParams()
			if tc.edit != nil {
				tc.edit(params)
			}
			resp, err := noRedirect.Get(tn.AuthorizeURL() + "?" + params.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus != http.StatusFound {
				if resp.Header.Get("Location") != "" || !strings.Contains(string(body), tc.wantError) {
					t.Fatalf("want an error page naming %s, got Location=%q body=%s", tc.wantError, resp.Header.Get("Location"), body)
				}
				return
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			q := loc.Query()
			if q.Get("error") != tc.wantError || !strings.HasPrefix(q.Get("error_description"), tc.wantDesc) || q.Get("state") != "st" {
				t.Fatalf("redirect query = %v", q)
			}
		})
	}
}

func TestAssignmentThroughDirectGroupOrUser(t *testing.T) {
	t.Parallel()
	d := smallDirectory()
	d.Users = append(d.Users, User{ID: "u-nested", UPN: "nested@example.com", MemberOf: []string{"g-sub"}})
	d.Groups = append(d.Groups, Group{ID: "g-sub", DisplayName: "Sub", MemberOf: []string{"g-eng"}})
	tests := []struct {
		user   string
		wantOK bool
	}{
		{"u-alice", true},   // direct member of assigned g-eng
		{"u-dave", true},    // assigned as a user
		{"u-nested", false}, // only through nesting: Entra does not count it
	}
	tn := startTenant(t, Config{AssignmentRequired: true, Directory: d})
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			params := authorizeParams()
			params.Set("login_hint", tc.user)
			resp, err := noRedirect.Get(tn.AuthorizeURL() + "?" + params.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if got := loc.Query().Get("code") != ""; got != tc.wantOK {
				t.Fatalf("signed in = %v, want %v (%v)", got, tc.wantOK, loc.Query())
			}
		})
	}
}

func TestInteractivePicker(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	params := authorizeParams()
	params.Del("login_hint")
	resp, err := http.Get(tn.AuthorizeURL() + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("picker: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"<legend>", "alice@example.com", "dave@example.com", `name="` + pickUserField + `"`, `<html lang="en">`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("picker page lacks %q", want)
		}
	}
	// Submit the form as a browser would: every hidden field plus the button.
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(string(page), -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	form.Set(pickUserField, "u-dave")
	resp, err = noRedirect.PostForm(tn.AuthorizeURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st" {
		t.Fatalf("picker POST: %d %v", resp.StatusCode, loc)
	}
}

func TestFormPostResponseMode(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	params := authorizeParams()
	params.Set("response_mode", "form_post")
	resp, err := noRedirect.Get(tn.AuthorizeURL() + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := string(page)
	if resp.StatusCode != http.StatusOK || !strings.Contains(s, `action="`+testRedirect+`"`) ||
		!strings.Contains(s, `name="code"`) || !strings.Contains(s, `name="state" value="st"`) {
		t.Fatalf("form_post page: %d %s", resp.StatusCode, s)
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		registered []string
		target     string
		wantLoc    string
	}{
		{"registered", []string{"https://app.example.com/bye"}, "https://app.example.com/bye", "https://app.example.com/bye?state=x"},
		{"any when none registered", nil, "https://app.example.com/bye", "https://app.example.com/bye?state=x"},
		{"unregistered", []string{"https://app.example.com/bye"}, "https://evil.example/", ""},
		{"javascript scheme", nil, "javascript:alert(1)", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := startTenant(t, Config{PostLogoutRedirectURIs: tc.registered})
			resp, err := noRedirect.Get(tn.LogoutURL() + "?" + url.Values{"post_logout_redirect_uri": {tc.target}, "state": {"x"}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := resp.Header.Get("Location"); got != tc.wantLoc {
				t.Fatalf("Location = %q, want %q", got, tc.wantLoc)
			}
			if tc.wantLoc == "" && !strings.Contains(string(body), "signed out") {
				t.Fatalf("no signed-out page: %s", body)
			}
		})
	}
}

func TestRotateKeysKeepsOldTokensVerifiable(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	ctx := context.Background()
	claims := func() map[string]any {
		return map[string]any{"iss": tn.Issuer(), "aud": testClient, "sub": "s", "exp": 4102444800, "iat": 1700000000}
	}
	before := tn.SignIDToken(claims())
	tn.RotateKeys()
	after := tn.SignIDToken(claims())
	keySet := oidc.NewRemoteKeySet(ctx, tn.AuthorityHost()+"/"+testTenant+"/discovery/v2.0/keys")
	v := oidc.NewVerifier(tn.Issuer(), keySet, &oidc.Config{ClientID: testClient})
	for name, tok := range map[string]string{"before rotation": before, "after rotation": after} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if kid(t, before) == kid(t, after) {
		t.Error("RotateKeys kept the kid")
	}
	// The Graph side keeps accepting tokens signed with the old key too.
	token := appToken(t, tn)
	tn.RotateKeys()
	if resp, body := graphGet(t, tn, token, "/v1.0/users/u-alice"); resp.StatusCode != 200 {
		t.Fatalf("old-key token after rotation: %d %v", resp.StatusCode, body)
	}
}

func kid(t *testing.T, raw string) string {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func TestClientCredentialsScope(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	tests := []struct {
		name, scope string
		wantError   string
	}{
		{"missing", "", "invalid_request"},
		{"not .default", tn.GraphURL() + "/User.Read.All", "invalid_scope"},
		{"other resource", "https://graph.microsoft.com/.default", "invalid_resource"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postToken(t, tn, url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient},
				"client_secret": {testSecret}, "scope": {tc.scope}})
			if status != http.StatusBadRequest || body["error"] != tc.wantError {
				t.Fatalf("got %d %v, want 400 %s", status, body, tc.wantError)
			}
		})
	}
}

func TestIndexPage(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	resp, err := http.Get(tn.AuthorityHost() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "dave@example.com") ||
		!strings.Contains(string(body), tn.Issuer()+"/.well-known/openid-configuration") {
		t.Fatalf("index: %d %s", resp.StatusCode, body)
	}
}
