package fakeentra

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// collect follows @odata.nextLink from path to the end and returns every
// item and the number of pages.
func collect(t *testing.T, tn *Tenant, token, path string) ([]map[string]any, int) {
	t.Helper()
	var items []map[string]any
	pages := 0
	for next := path; next != ""; pages++ {
		resp, body := graphGet(t, tn, token, next)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", next, resp.StatusCode, body)
		}
		vals, _ := body["value"].([]any)
		for _, v := range vals {
			items = append(items, v.(map[string]any))
		}
		next, _ = body["@odata.nextLink"].(string)
		if next != "" && !strings.HasPrefix(next, tn.GraphURL()+"/v1.0/") {
			t.Fatalf("nextLink %q is not an absolute Graph URL", next)
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
	return items, pages
}

func TestMemberOfPaging(t *testing.T) {
	t.Parallel()
	d := Directory{Users: []User{{ID: "u-big", UPN: "big@example.com"}}}
	for i := range 1200 {
		id := fmt.Sprintf("g-%04d", i)
		d.Groups = append(d.Groups, Group{ID: id, DisplayName: "Group " + id})
		d.Users[0].MemberOf = append(d.Users[0].MemberOf, id)
	}
	tn := startTenant(t, Config{Directory: d})
	token := appToken(t, tn)

	tests := []struct {
		name      string
		query     string
		wantPages int
	}{
		{name: "default page size", query: "", wantPages: 12},
		{name: "top 999 with select", query: "?$top=999&$select=id,displayName", wantPages: 2},
		{name: "cast to group", query: "/microsoft.graph.group?$top=500", wantPages: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, pages := collect(t, tn, token, "/v1.0/users/u-big/memberOf"+tc.query)
			if pages != tc.wantPages || len(items) != 1200 {
				t.Fatalf("got %d items in %d pages, want 1200 in %d", len(items), pages, tc.wantPages)
			}
			seen := map[string]bool{}
			for _, it := range items {
				id, _ := it["id"].(string)
				if seen[id] || it["displayName"] != "Group "+id {
					t.Fatalf("bad or duplicate item %v", it)
				}
				seen[id] = true
			}
		})
	}
	if resp, body := graphGet(t, tn, token, "/v1.0/users/u-big/memberOf?$top=1000"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("$top=1000: %d %v, want 400", resp.StatusCode, body)
	}
}

func TestMemberOfMixesTypesAndSelect(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	token := appToken(t, tn)
	items, _ := collect(t, tn, token, "/v1.0/users/u-alice/memberOf?$select=id,displayName")
	got := map[string]string{}
	for _, it := range items {
		got[it["id"].(string)] = it["@odata.type"].(string)
		if len(it) != 3 {
			t.Errorf("$select=id,displayName item has extra properties: %v", it)
		}
	}
	want := map[string]string{"g-eng": "#microsoft.graph.group", "r-reader": "#microsoft.graph.directoryRole",
		"au-eu": "#microsoft.graph.administrativeUnit"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("memberOf types = %v, want %v", got, want)
	}
	// The cast keeps groups only.
	groups, _ := collect(t, tn, token, "/v1.0/users/u-alice/memberOf/microsoft.graph.group")
	if len(groups) != 1 || groups[0]["id"] != "g-eng" {
		t.Fatalf("cast = %v", groups)
	}
}

func TestTransitiveMemberOfFollowsNestingAndCycles(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	token := appToken(t, tn)
	items, _ := collect(t, tn, token, "/v1.0/users/u-alice/transitiveMemberOf/microsoft.graph.group?$select=id,displayName")
	var ids []string
	for _, it := range items {
		ids = append(ids, it["id"].(string))
	}
	if strings.Join(ids, ",") != "g-eng,g-all" {
		t.Fatalf("transitive groups = %v, want [g-eng g-all]", ids)
	}
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		perms      []string
		path       string
		wantStatus int
		wantCode   string
	}{
		{"users needs User.Read.All", []string{"GroupMember.Read.All"}, "/v1.0/users/u-alice", 403, "Authorization_RequestDenied"},
		{"users with User.Read.All", []string{"User.Read.All"}, "/v1.0/users/u-alice", 200, ""},
		{"Directory.Read.All reads users", []string{"Directory.Read.All"}, "/v1.0/users/u-alice", 200, ""},
		{"assignments need Application.Read.All", []string{"GroupMember.Read.All", "User.Read.All"},
			"/v1.0/servicePrincipals/sp-1/appRoleAssignedTo", 403, "Authorization_RequestDenied"},
		{"unknown user", nil, "/v1.0/users/nobody", 404, "Request_ResourceNotFound"},
		{"unknown service principal", nil, "/v1.0/servicePrincipals/other/appRoleAssignedTo", 404, "Request_ResourceNotFound"},
		{"groups need group read", []string{"User.Read.All"}, "/v1.0/groups/g-eng", 403, "Authorization_RequestDenied"},
		{"me with app token", nil, "/v1.0/me/memberOf", 400, "BadRequest"},
		{"unsupported filter", nil, "/v1.0/users/u-alice/memberOf?$filter=x", 400, "Request_UnsupportedQuery"},
		{"count without consistency level", nil, "/v1.0/users/u-alice/memberOf?$count=true", 400, "Request_BadRequest"},
		{"unknown select property", nil, "/v1.0/users/u-alice?$select=shoeSize", 400, "BadRequest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := startTenant(t, Config{ServicePrincipalID: "sp-1", AppPermissions: tc.perms})
			resp, body := graphGet(t, tn, appToken(t, tn), tc.path)
			if resp.StatusCode != tc.wantStatus || graphErrorCode(body) != tc.wantCode {
				t.Fatalf("got %d %q, want %d %q (%v)", resp.StatusCode, graphErrorCode(body), tc.wantStatus, tc.wantCode, body)
			}
			if tc.wantCode != "" {
				inner, _ := body["error"].(map[string]any)["innerError"].(map[string]any)
				if inner["request-id"] == nil || inner["date"] == nil {
					t.Errorf("error lacks innerError ids: %v", body)
				}
			}
		})
	}
}

func TestMeWithAppTokenMessage(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	_, body := graphGet(t, tn, appToken(t, tn), "/v1.0/me")
	if msg := body["error"].(map[string]any)["message"]; msg != "/me request is only valid with delegated authentication flow." {
		t.Fatalf("message = %v", msg)
	}
}

func TestLimitedInformationWithoutGroupPermission(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{AppPermissions: []string{"User.Read.All"}})
	items, _ := collect(t, tn, appToken(t, tn), "/v1.0/users/u-alice/memberOf?$select=id,displayName")
	for _, it := range items {
		if it["@odata.type"] == "#microsoft.graph.group" {
			if dn, present := it["displayName"]; !present || dn != nil || it["id"] != "g-eng" {
				t.Fatalf("group item = %v, want limited information (displayName: null)", it)
			}
			return
		}
	}
	t.Fatal("no group item in memberOf")
}

func TestAppRoleAssignedTo(t *testing.T) {
	t.Parallel()
	d := Directory{Users: []User{{ID: "u-1", DisplayName: "One", UPN: "one@example.com"}}, AppAssignments: []string{"u-1"}}
	for i := range 150 {
		id := fmt.Sprintf("g-%03d", i)
		d.Groups = append(d.Groups, Group{ID: id, DisplayName: "G" + id})
		d.AppAssignments = append(d.AppAssignments, id)
	}
	tn := startTenant(t, Config{Directory: d, ServicePrincipalID: "sp-1"})
	token := appToken(t, tn)
	for _, path := range []string{
		"/v1.0/servicePrincipals/sp-1/appRoleAssignedTo",
		"/v1.0/servicePrincipals(appId='" + testClient + "')/appRoleAssignedTo?$top=60",
	} {
		items, pages := collect(t, tn, token, path)
		if len(items) != 151 || pages < 2 {
			t.Fatalf("%s: %d items in %d pages, want 151 over several pages", path, len(items), pages)
		}
		users, groups := 0, 0
		for _, it := range items {
			switch it["principalType"] {
			case "User":
				users++
			case "Group":
				groups++
				if it["principalDisplayName"] != "G"+it["principalId"].(string) || it["resourceId"] != "sp-1" {
					t.Fatalf("bad item %v", it)
				}
			}
		}
		if users != 1 || groups != 150 {
			t.Fatalf("%d users, %d groups", users, groups)
		}
	}
}

func TestFailNextWithRetryAfter(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	token := appToken(t, tn)
	tn.FailNext("/memberOf", 2, http.StatusTooManyRequests, "3")
	for i := range 2 {
		resp, body := graphGet(t, tn, token, "/v1.0/users/u-alice/memberOf")
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || graphErrorCode(body) != "TooManyRequests" {
			t.Fatalf("call %d: %d Retry-After=%q %v", i, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if resp, _ := graphGet(t, tn, token, "/v1.0/users/u-alice/memberOf"); resp.StatusCode != 200 {
		t.Fatalf("third call: %d", resp.StatusCode)
	}
	if n := tn.Calls("/memberOf"); n != 3 {
		t.Errorf("Calls = %d, want 3", n)
	}
	tn.FailNext("/users/", 1, http.StatusServiceUnavailable, "")
	resp, body := graphGet(t, tn, token, "/v1.0/users/u-alice")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "" || graphErrorCode(body) != "ServiceUnavailable" {
		t.Fatalf("503: %d %v", resp.StatusCode, body)
	}
}

func TestSetLatencyHonoursContext(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	token := appToken(t, tn)
	tn.SetLatency("/memberOf", time.Hour)
	// A request whose context is already over must not be held for the hour:
	// ServeHTTP returns at once without answering.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, tn.GraphURL()+"/v1.0/users/u-alice/memberOf", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	tn.ServeHTTP(rec, req)
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
		t.Fatalf("answered a cancelled request: %d %s", rec.Code, rec.Body)
	}
	tn.SetLatency("/memberOf", 0)
	if resp, _ := graphGet(t, tn, token, "/v1.0/users/u-alice/memberOf"); resp.StatusCode != 200 {
		t.Fatalf("after removing latency: %d", resp.StatusCode)
	}
}

func TestBearerValidation(t *testing.T) {
	t.Parallel()
	clock := newClock()
	tn := startTenant(t, Config{Now: clock.Now})
	valid := appToken(t, tn)
	forged := tn.SignIDToken(map[string]any{"aud": "https://elsewhere", "iss": tn.Issuer(), "tid": testTenant,
		"exp": clock.Now().Add(time.Hour).Unix(), "nbf": clock.Now().Unix(), "idtyp": "app", "roles": []string{"User.Read.All"}})
	tests := []struct {
		name, token string
		advance     time.Duration
	}{
		{"missing", "", 0},
		{"garbage", "not-a-jwt", 0},
		{"wrong audience", forged, 0},
		{"tampered", valid[:len(valid)-4] + "AAAA", 0},
		{"expired", valid, 2 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(tc.advance)
			resp, body := graphGet(t, tn, tc.token, "/v1.0/users/u-alice")
			if resp.StatusCode != 401 || graphErrorCode(body) != "InvalidAuthenticationToken" {
				t.Fatalf("got %d %v, want 401 InvalidAuthenticationToken", resp.StatusCode, body)
			}
		})
	}
}

// userToken signs user in non-interactively and returns the delegated Graph
// access token for the given scopes.
func userToken(t *testing.T, tn *Tenant, user, scope string) string {
	t.Helper()
	pkce := oauth2.GenerateVerifier()
	params := authorizeParams()
	params.Set("login_hint", user)
	params.Set("scope", scope)
	params.Set("code_challenge", oauth2.S256ChallengeFromVerifier(pkce))
	resp, err := noRedirect.Get(tn.AuthorizeURL() + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	status, body := postToken(t, tn, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {testRedirect}, "code_verifier": {pkce}, "client_id": {testClient}, "client_secret": {testSecret}})
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, body)
	}
	return body["access_token"].(string)
}

func TestDelegatedGraph(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	basic := userToken(t, tn, "alice@example.com", "openid profile User.Read")
	full := userToken(t, tn, "alice@example.com", "openid https://graph.microsoft.com/GroupMember.Read.All")

	tests := []struct {
		name, token, path string
		wantStatus        int
		wantGroupName     any // displayName of g-eng in a memberOf answer
	}{
		{"me", basic, "/v1.0/me?$select=id,mail", 200, nil},
		{"me memberOf with User.Read is limited", basic, "/v1.0/me/memberOf", 200, nil},
		{"me memberOf with GroupMember.Read.All", full, "/v1.0/me/transitiveMemberOf", 200, "Engineering"},
		{"own id works like me", basic, "/v1.0/users/u-alice/memberOf", 200, nil},
		{"another user needs User.Read.All", basic, "/v1.0/users/u-dave", 403, nil},
		{"app assignments need Application.Read.All", full, "/v1.0/servicePrincipals/" + tn.ServicePrincipalID() + "/appRoleAssignedTo", 403, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := graphGet(t, tn, tc.token, tc.path)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.wantStatus, body)
			}
			vals, isList := body["value"].([]any)
			if !isList {
				return
			}
			for _, v := range vals {
				if it := v.(map[string]any); it["id"] == "g-eng" {
					if it["displayName"] != tc.wantGroupName {
						t.Fatalf("g-eng displayName = %v, want %v", it["displayName"], tc.wantGroupName)
					}
					return
				}
			}
			t.Fatalf("g-eng missing from %v", vals)
		})
	}
	_, me := graphGet(t, tn, basic, "/v1.0/me?$select=id,mail")
	if len(me) != 3 || me["mail"] != "alice@example.com" { // id, mail, @odata.context
		t.Errorf("$select on /me: %v", me)
	}
}

func TestCountWithConsistencyLevel(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	resp, body := graphGet(t, tn, appToken(t, tn), "/v1.0/users/u-alice/memberOf/microsoft.graph.group?$count=true&$top=1",
		"ConsistencyLevel", "eventual")
	if resp.StatusCode != 200 || body["@odata.count"] != float64(1) {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
}

func TestFailNextOnTokenEndpointUsesOAuthShape(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	tn.FailNext("/oauth2/v2.0/token", 1, http.StatusServiceUnavailable, "1")
	status, body := postToken(t, tn, url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient},
		"client_secret": {testSecret}, "scope": {tn.GraphURL() + "/.default"}})
	if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		t.Fatalf("got %d %v", status, body)
	}
	appToken(t, tn) // the next one succeeds
}

func TestAppRoleAssignedToSelect(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	path := "/v1.0/servicePrincipals/" + tn.ServicePrincipalID() + "/appRoleAssignedTo?$select=principalId,principalType"
	items, _ := collect(t, tn, appToken(t, tn), path)
	if len(items) != 3 || len(items[0]) != 2 || items[0]["principalType"] == nil {
		t.Fatalf("items = %v", items)
	}
	if resp, _ := graphGet(t, tn, appToken(t, tn), path+",bogus"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown $select property: %d", resp.StatusCode)
	}
}
