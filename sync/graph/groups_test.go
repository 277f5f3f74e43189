package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestUserGroupsPaging(t *testing.T) {
	tests := []struct {
		name      string
		nested    bool
		rel       string
		groups    int
		maxPage   int
		emptyPage bool
		wantPages int
	}{
		{name: "1200 groups, $top=999 honoured", rel: "memberOf", groups: 1200, maxPage: 999, wantPages: 2},
		{name: "nested uses transitiveMemberOf", nested: true, rel: "transitiveMemberOf", groups: 1200, maxPage: 999, wantPages: 2},
		{name: "server pages smaller than $top", rel: "memberOf", groups: 1200, maxPage: 100, wantPages: 13},
		{name: "empty page in the middle", rel: "memberOf", groups: 250, maxPage: 100, emptyPage: true, wantPages: 4},
		{name: "no groups", rel: "memberOf", groups: 0, maxPage: 999, wantPages: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var items []any
			for i := range tt.groups {
				items = append(items, groupItem(fmt.Sprintf("g-%04d", i), fmt.Sprintf("Group %d", i)))
				if i%100 == 0 { // mixed in as Graph does
					items = append(items,
						map[string]any{"@odata.type": "#microsoft.graph.directoryRole", "id": fmt.Sprintf("role-%d", i), "displayName": "Global Reader"},
						map[string]any{"@odata.type": "#microsoft.graph.administrativeUnit", "id": fmt.Sprintf("au-%d", i), "displayName": "Paris"})
				}
			}
			ft := newFakeTenant(t)
			col := &collection{t: t, items: items, maxPage: tt.maxPage, emptyPage: tt.emptyPage}
			ft.Graph.Handle("GET /v1.0/users/{id}/"+tt.rel, col)
			env := newTestEnv(t, ft, func(c *Config) { c.NestedGroups = tt.nested })

			got, err := env.UserGroups(t.Context(), "user-1")
			if err != nil {
				t.Fatalf("UserGroups: %v", err)
			}
			if len(got) != tt.groups {
				t.Fatalf("got %d groups, want %d", len(got), tt.groups)
			}
			for i, g := range got {
				if want := (Group{ID: fmt.Sprintf("g-%04d", i), DisplayName: fmt.Sprintf("Group %d", i)}); g != want {
					t.Fatalf("group %d = %+v, want %+v", i, g, want)
				}
			}
			if col.Pages() != tt.wantPages {
				t.Errorf("pages = %d, want %d", col.Pages(), tt.wantPages)
			}
			reqs := env.tenant.Requests()
			first, _ := url.Parse(reqs[0])
			if first.Path != "/v1.0/users/user-1/"+tt.rel {
				t.Errorf("first request path = %s", first.Path)
			}
			if q := first.Query(); q.Get("$select") != "id,displayName" || q.Get("$top") != "999" {
				t.Errorf("first request query = %s, want $select=id,displayName&$top=999", first.RawQuery)
			}
			if n := env.tenant.TokensIssued(); n != 1 {
				t.Errorf("tokens issued = %d, want 1 (cached across pages)", n)
			}
		})
	}
}

func TestUserGroupsDeduplicates(t *testing.T) {
	ft := newFakeTenant(t)
	ft.Graph.Handle("GET /v1.0/users/{id}/transitiveMemberOf", &collection{t: t, maxPage: 2, items: []any{
		groupItem("a", "Alpha"), groupItem("b", "Beta"), groupItem("a", "Alpha"), groupItem("c", "Gamma"), groupItem("b", "Beta"),
	}})
	env := newTestEnv(t, ft, func(c *Config) { c.NestedGroups = true })
	got, err := env.UserGroups(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	want := []Group{{"a", "Alpha"}, {"b", "Beta"}, {"c", "Gamma"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestUserGroupsEscapesUserID(t *testing.T) {
	ft := newFakeTenant(t)
	var gotPath, gotID string
	ft.Graph.HandleFunc("GET /v1.0/users/{id}/memberOf", func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotID = r.URL.EscapedPath(), r.PathValue("id")
		writeJSON(w, http.StatusOK, map[string]any{"value": []any{}})
	})
	env := newTestEnv(t, ft, nil)
	id := "ext#user/../x?y@contoso.com"
	if _, err := env.UserGroups(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if gotID != id || gotPath != "/v1.0/users/"+url.PathEscape(id)+"/memberOf" {
		t.Errorf("path %q id %q: the user id was not escaped as one segment", gotPath, gotID)
	}
	for _, bad := range []string{"", ".", ".."} {
		if _, err := env.UserGroups(t.Context(), bad); err == nil {
			t.Errorf("UserGroups(%q) succeeded", bad)
		}
	}
}

func TestUserGroupsLimitedInformation(t *testing.T) {
	tests := []struct {
		name string
		item map[string]any
	}{
		{name: "displayName null", item: map[string]any{"@odata.type": odataGroup, "id": "g-1", "displayName": nil}},
		{name: "displayName absent", item: map[string]any{"@odata.type": odataGroup, "id": "g-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTenant(t)
			ft.Graph.Handle("GET /v1.0/users/{id}/memberOf", &collection{t: t, maxPage: 999, items: []any{groupItem("g-0", "Fine"), tt.item}})
			env := newTestEnv(t, ft, nil)
			got, err := env.UserGroups(t.Context(), "u")
			var pe *PermissionError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, %v; want a *PermissionError", got, err)
			}
			if pe.Permission != PermGroupMemberReadAll || pe.Status != http.StatusOK || pe.Endpoint != "/v1.0/users/u/memberOf" {
				t.Errorf("PermissionError = %+v", pe)
			}
			if !strings.Contains(err.Error(), "GroupMember.Read.All") || strings.Contains(err.Error(), "null") {
				t.Errorf("message %q should name GroupMember.Read.All", err)
			}
		})
	}
}

func TestNextLinkMustStayOnGraph(t *testing.T) {
	ft := newFakeTenant(t)
	ft.Graph.HandleFunc("GET /v1.0/users/{id}/memberOf", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"value": []any{}, "@odata.nextLink": "https://evil.example/v1.0/steal"})
	})
	ft.Graph.HandleFunc("GET /v1.0/users/{id}/transitiveMemberOf", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"value": []any{}, "@odata.nextLink": "http://" + r.Host + r.URL.RequestURI()})
	})
	for _, nested := range []bool{false, true} {
		env := newTestEnv(t, ft, func(c *Config) { c.NestedGroups = nested })
		if _, err := env.UserGroups(t.Context(), "u"); err == nil {
			t.Errorf("nested=%v: a bad nextLink was followed", nested)
		}
	}
}

func TestUser(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name string
		body map[string]any
		want UserProfile
	}{
		{name: "full", body: map[string]any{"id": "u-1", "displayName": "Ada", "mail": "Ada@contoso.com", "userPrincipalName": "ada@contoso.com", "accountEnabled": true},
			want: UserProfile{ID: "u-1", DisplayName: "Ada", Mail: "Ada@contoso.com", UserPrincipalName: "ada@contoso.com", AccountEnabled: &yes}},
		{name: "no mailbox", body: map[string]any{"id": "u-1", "displayName": "Bob", "mail": nil, "userPrincipalName": "bob@contoso.com", "accountEnabled": true},
			want: UserProfile{ID: "u-1", DisplayName: "Bob", UserPrincipalName: "bob@contoso.com", AccountEnabled: &yes}},
		{name: "disabled", body: map[string]any{"id": "u-1", "displayName": "Eve", "userPrincipalName": "eve@contoso.com", "accountEnabled": false},
			want: UserProfile{ID: "u-1", DisplayName: "Eve", UserPrincipalName: "eve@contoso.com", AccountEnabled: &no}},
		{name: "accountEnabled withheld", body: map[string]any{"id": "u-1", "displayName": "Kim", "userPrincipalName": "kim@contoso.com"},
			want: UserProfile{ID: "u-1", DisplayName: "Kim", UserPrincipalName: "kim@contoso.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTenant(t)
			var query url.Values
			ft.Graph.HandleFunc("GET /v1.0/users/{id}", func(w http.ResponseWriter, r *http.Request) {
				query = r.URL.Query()
				writeJSON(w, http.StatusOK, tt.body)
			})
			env := newTestEnv(t, ft, nil)
			got, err := env.User(context.Background(), "u-1")
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.AccountEnabled != nil, deref(got.AccountEnabled)) != fmt.Sprint(tt.want.AccountEnabled != nil, deref(tt.want.AccountEnabled)) {
				t.Errorf("AccountEnabled = %v, want %v", deref(got.AccountEnabled), deref(tt.want.AccountEnabled))
			}
			got.AccountEnabled, tt.want.AccountEnabled = nil, nil
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if query.Get("$select") != "id,displayName,mail,userPrincipalName,accountEnabled" {
				t.Errorf("$select = %q", query.Get("$select"))
			}
		})
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestUserNotFound(t *testing.T) {
	ft := newFakeTenant(t)
	ft.Graph.HandleFunc("GET /v1.0/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "gone" {
			graphError(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource 'gone' does not exist or one of its queried reference-property objects are not present.")
			return
		}
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid object identifier.")
	})
	env := newTestEnv(t, ft, nil)
	_, err := env.User(t.Context(), "gone")
	var ae *APIError
	if !errors.Is(err, ErrUserNotFound) || !errors.As(err, &ae) || ae.Status != http.StatusNotFound || errors.Is(err, ErrUnavailable) {
		t.Fatalf("404: %v, want ErrUserNotFound wrapping the *APIError", err)
	}
	if _, err := env.User(t.Context(), "bad"); errors.Is(err, ErrUserNotFound) || !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Fatalf("400: %v, want a plain *APIError", err)
	}
}

func TestGroupMembers(t *testing.T) {
	items := []any{
		member("user", "u-1"), member("group", "g-2"), member("user", "u-1"), // listed twice: kept once
		map[string]any{"@odata.type": "#microsoft.graph.device", "id": "d-1"},
	}
	for _, nested := range []bool{false, true} {
		rel := "members"
		if nested {
			rel = "transitiveMembers"
		}
		t.Run(rel, func(t *testing.T) {
			ft := newFakeTenant(t)
			col := &collection{t: t, items: items, maxPage: 2}
			ft.Graph.Handle("GET /v1.0/groups/{id}/"+rel, col)
			env := newTestEnv(t, ft, func(c *Config) { c.NestedGroups = nested })
			got, err := env.GroupMembers(t.Context(), "g-1")
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != "[{u-1 user} {g-2 group} {d-1 device}]" || col.Pages() != 2 {
				t.Errorf("got %v in %d pages", got, col.Pages())
			}
			if first := ft.Requests()[0]; first != "/v1.0/groups/g-1/"+rel+"?$select=id&$top=999" {
				t.Errorf("first request = %s", first)
			}
		})
	}
	ft := newFakeTenant(t)
	ft.Graph.HandleFunc("GET /v1.0/groups/{id}/members", status(http.StatusForbidden, "Authorization_RequestDenied"))
	env := newTestEnv(t, ft, nil)
	var pe *PermissionError
	if _, err := env.GroupMembers(t.Context(), "g-1"); !errors.As(err, &pe) || pe.Permission != PermGroupMemberReadAll {
		t.Errorf("403: %v", err)
	}
	if _, err := env.GroupMembers(t.Context(), ".."); err == nil {
		t.Error(`GroupMembers("..") succeeded`)
	}
}
