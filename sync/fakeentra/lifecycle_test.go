package fakeentra

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// signIn runs the code flow for user and returns the refresh token.
func signIn(t *testing.T, tn *Tenant, user string) string {
	t.Helper()
	rp := newRelyingParty(t, tn)
	pkce := oauth2.GenerateVerifier()
	q := rp.authorize(t, "st", "n", pkce, oauth2.SetAuthURLParam("login_hint", user))
	tok, err := rp.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("sign-in of %s: %v", user, err)
	}
	return tok.RefreshToken
}

func refresh(t *testing.T, tn *Tenant, rt string) (int, map[string]any) {
	t.Helper()
	return postToken(t, tn, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {testClient}, "client_secret": {testSecret}})
}

func wantOAuthError(t *testing.T, what string, status int, body map[string]any, code string) {
	t.Helper()
	desc, _ := body["error_description"].(string)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" || !strings.HasPrefix(desc, code+":") {
		t.Errorf("%s: %d %v, want invalid_grant %s", what, status, body, code)
	}
}

func TestDisableAndEnableUser(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	token := appToken(t, tn)
	rt := signIn(t, tn, "alice@example.com")
	enabled := func() any {
		t.Helper()
		resp, body := graphGet(t, tn, token, "/v1.0/users/u-alice?$select=id,accountEnabled")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET user: %d %v", resp.StatusCode, body)
		}
		return body["accountEnabled"]
	}
	if enabled() != true {
		t.Fatal("a new user is not accountEnabled")
	}

	tn.DisableUser("U-ALICE") // ids are case-insensitive
	if enabled() != false {
		t.Error("accountEnabled still true after DisableUser")
	}
	status, body := refresh(t, tn, rt)
	wantOAuthError(t, "refresh of a disabled user", status, body, "AADSTS50057")
	resp, err := http.Get(tn.AuthorizeURL() + "?" + authorizeParams().Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(page), "AADSTS50057") {
		t.Errorf("authorize of a disabled user: %d %s", resp.StatusCode, page)
	}
	params := authorizeParams()
	params.Del("login_hint")
	resp, err = http.Get(tn.AuthorizeURL() + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "(account disabled)") {
		t.Errorf("the picker does not mark the disabled account:\n%s", page)
	}

	tn.EnableUser("u-alice")
	if enabled() != true {
		t.Error("accountEnabled false after EnableUser")
	}
	if status, body := refresh(t, tn, rt); status != http.StatusOK {
		t.Errorf("refresh after EnableUser: %d %v", status, body)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("DisableUser of an unknown user did not panic")
			}
		}()
		tn.DisableUser("nobody")
	}()
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	token := appToken(t, tn)
	rt := signIn(t, tn, "dave@example.com")
	tn.DeleteUser("u-dave")

	resp, body := graphGet(t, tn, token, "/v1.0/users/u-dave")
	if resp.StatusCode != http.StatusNotFound || graphErrorCode(body) != "Request_ResourceNotFound" {
		t.Errorf("GET deleted user: %d %v", resp.StatusCode, body)
	}
	if resp, _ := graphGet(t, tn, token, "/v1.0/users/dave@example.com"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET deleted user by UPN: %d", resp.StatusCode)
	}
	items, _ := collect(t, tn, token, "/v1.0/servicePrincipals/"+tn.ServicePrincipalID()+"/appRoleAssignedTo")
	for _, it := range items {
		if it["principalId"] == "u-dave" {
			t.Errorf("the deleted user is still assigned: %v", it)
		}
	}
	for _, u := range tn.Directory().Users {
		if u.ID == "u-dave" {
			t.Error("the deleted user is still in the directory")
		}
	}
	status, body := refresh(t, tn, rt)
	wantOAuthError(t, "refresh of a deleted user", status, body, "AADSTS50034")
	params := authorizeParams()
	params.Set("login_hint", "dave@example.com")
	resp, err := http.Get(tn.AuthorizeURL() + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "AADSTS50034") || strings.Contains(string(page), "dave@example.com</span>") {
		t.Errorf("authorize of a deleted user: %d %s", resp.StatusCode, page)
	}
}

func TestServicePrincipal(t *testing.T) {
	t.Parallel()
	d := smallDirectory()
	d.AppAssignments = []string{"g-mkt"} // dave through his group; alice not at all
	tn := startTenant(t, Config{Directory: d, ServicePrincipalID: "sp-1"})
	token := appToken(t, tn)
	required := func(path string) any {
		t.Helper()
		resp, body := graphGet(t, tn, token, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, body)
		}
		if len(body) != 2 {
			t.Errorf("$select=appRoleAssignmentRequired answered %v", body)
		}
		return body["appRoleAssignmentRequired"]
	}
	const path = "/v1.0/servicePrincipals/sp-1?$select=appRoleAssignmentRequired"
	if required(path) != false {
		t.Fatal("assignment required by default")
	}
	signIn(t, tn, "alice@example.com")

	tn.SetAssignmentRequired(true)
	if required(path) != true || required("/v1.0/servicePrincipals(appId='"+testClient+"')?$select=appRoleAssignmentRequired") != true {
		t.Fatal("SetAssignmentRequired(true) not reflected")
	}
	if !tn.Directory().AssignmentRequired {
		t.Error("Directory().AssignmentRequired = false")
	}
	rp := newRelyingParty(t, tn)
	resp, err := noRedirect.Get(rp.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("login_hint", "alice@example.com")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.Query().Get("error_description"), "AADSTS50105") {
		t.Errorf("unassigned alice with assignment required: %v", loc)
	}
	signIn(t, tn, "dave@example.com")

	if resp, _ := graphGet(t, tn, token, "/v1.0/servicePrincipals/someone-else"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another service principal: %d, want 404", resp.StatusCode)
	}
	tn.SetAppPermissions("GroupMember.Read.All")
	if resp, _ := graphGet(t, tn, appToken(t, tn), path); resp.StatusCode != http.StatusForbidden {
		t.Errorf("without Application.Read.All: %d, want 403", resp.StatusCode)
	}
}

func TestParseDirectoryUserAndAppFlags(t *testing.T) {
	t.Parallel()
	d, err := ParseDirectory([]byte("assignment_required: true\nusers:\n  - {id: u1, upn: a@x, disabled: true}\n  - {id: u2, upn: b@x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !d.AssignmentRequired || !d.Users[0].Disabled || d.Users[1].Disabled {
		t.Fatalf("flags not decoded: %+v", d)
	}
}
