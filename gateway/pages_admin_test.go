package gateway

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Handler tests of the admin pages: who may open them, pagination, member
// changes, the sync log's filters and the provisioning backlog panel.

func TestAdminPagesForbiddenForNonAdmins(t *testing.T) {
	tests := []struct {
		name     string
		role     string
		inGroup  bool
		groupIDs []string
		want     int
	}{
		{"internal user", "internal_user", false, nil, http.StatusForbidden},
		{"proxy_admin_viewer is not enough", "proxy_admin_viewer", false, nil, http.StatusForbidden},
		{"proxy admin", "proxy_admin", false, nil, http.StatusOK},
		{"member of an admin group", "internal_user", true, []string{"admins"}, http.StatusOK},
		{"flag left over after the groups were removed from the config", "internal_user", true, nil, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fp *fakePages
			h := newHarness(t, withPages(3, &fp), func(s *setup) { s.cfg.Admin.GroupIDs = tt.groupIDs })
			c := h.signedInBrowser("alice@example.com")
			h.setPrincipal(aliceID, func(p *Principal) { p.Role, p.InAdminGroup = tt.role, tt.inGroup })
			for _, path := range []string{"/teamgate/admin", "/teamgate/admin/team?id=team-000", "/teamgate/admin/users", "/teamgate/admin/events"} {
				res, body := h.get(c, path, nil)
				if res.StatusCode != tt.want {
					t.Errorf("GET %s: %d, want %d", path, res.StatusCode, tt.want)
				}
				if tt.want == http.StatusForbidden && !strings.Contains(body, "Administrators only") {
					t.Errorf("GET %s: 403 without its page:\n%.400s", path, body)
				}
			}
			_, body := h.get(c, "/teamgate/me", nil)
			if links := strings.Contains(body, `href="/teamgate/admin"`); links != (tt.want == http.StatusOK) {
				t.Errorf("admin link shown = %v", links)
			}
		})
	}
}

// adminHarness is a gateway with n teams and alice signed in as proxy_admin.
func adminHarness(t *testing.T, n int, opts ...func(*setup)) (*harness, *fakePages, *http.Client) {
	t.Helper()
	var fp *fakePages
	h := newHarness(t, append([]func(*setup){withPages(n, &fp)}, opts...)...)
	c := h.signedInBrowser("alice@example.com")
	h.setPrincipal(aliceID, func(p *Principal) { p.Role = "proxy_admin" })
	return h, fp, c
}

func TestAdminTeamsPagination(t *testing.T) {
	h, _, c := adminHarness(t, 120)
	tests := []struct {
		name      string
		query     string
		want      []string
		wantNot   []string
		firstTeam string
	}{
		{"first page", "", []string{"1–50 of 120 teams", "page 1 of 3", `href="/teamgate/admin?page=2" rel="next"`}, []string{`rel="prev"`, "Team 050"}, "Team 000"},
		{"middle page", "page=2", []string{"51–100 of 120", `href="/teamgate/admin?page=1" rel="prev"`, `href="/teamgate/admin?page=3" rel="next"`}, []string{"Team 049", "Team 100"}, "Team 050"},
		{"last page", "page=3", []string{"101–120 of 120", "page 3 of 3"}, []string{`rel="next"`}, "Team 100"},
		{"past the end shows the last page", "page=99", []string{"101–120 of 120"}, nil, "Team 100"},
		{"garbage page number", "page=-4x", []string{"1–50 of 120"}, nil, "Team 000"},
		{"search", "q=team+1", []string{"20 teams", `value="team 1"`}, []string{`rel="next"`}, "Team 100"},
		{"search with no match", "q=nothing", []string{"No team matches", "No teams"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := h.get(c, "/teamgate/admin?"+tt.query, nil)
			wantPage(t, res, body, http.StatusOK, tt.want...)
			for _, s := range tt.wantNot {
				if strings.Contains(body, s) {
					t.Errorf("page contains %q", s)
				}
			}
			if tt.firstTeam != "" {
				if i := strings.Index(body, `<tbody>`); i < 0 || !strings.Contains(body[i:min(len(body), i+300)], tt.firstTeam) {
					t.Errorf("first row is not %s", tt.firstTeam)
				}
			}
		})
	}
}

func TestAdminMemberChanges(t *testing.T) {
	h, fp, c := adminHarness(t, 3)
	fp.users = []PageUser{{UserID: bobID, Email: "bob@example.com"}}
	token := h.csrfToken(c, "/teamgate/admin/team?id=team-001")

	res, body := h.postForm(c, "/teamgate/admin/members/add", url.Values{"csrf_token": {token}, "team_id": {"team-001"}, "user": {" BOB@example.com "}}, nil)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/teamgate/admin/team?id=team-001&") {
		t.Fatalf("add: %d to %q\n%s", res.StatusCode, loc, body)
	}
	res, body = h.get(c, loc, nil)
	wantPage(t, res, body, http.StatusOK, "Added bob@example.com as a manual member.", "manual")

	res, body = h.postForm(c, "/teamgate/admin/members/add", url.Values{"csrf_token": {token}, "team_id": {"team-001"}, "user": {"nobody@example.com"}}, nil)
	wantPage(t, res, body, http.StatusBadRequest, "No user with the id, email or sign-in name “nobody@example.com”")

	res, _ = h.postForm(c, "/teamgate/admin/members/remove", url.Values{"csrf_token": {token}, "team_id": {"team-001"}, "user_id": {bobID}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", res.StatusCode)
	}
	res, body = h.get(c, res.Header.Get("Location"), nil)
	wantPage(t, res, body, http.StatusOK, "Removed "+bobID+" from the team.")
	res, body = h.postForm(c, "/teamgate/admin/members/remove", url.Values{"csrf_token": {token}, "team_id": {"team-001"}, "user_id": {bobID}}, nil)
	wantPage(t, res, body, http.StatusBadRequest, "not a member of this team")

	want := []string{"add team-001 " + bobID + " alice@example.com", "remove team-001 " + bobID + " alice@example.com"}
	if got := fp.recorded(); !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
	// A crafted confirmation link claims nothing.
	_, body = h.get(c, "/teamgate/admin/team?id=team-001&done=added&user_id="+bobID, nil)
	if strings.Contains(body, "Added") {
		t.Error("a done=added link for a non-member shows a confirmation")
	}
	res, body = h.get(c, "/teamgate/admin/team?id=nope", nil)
	wantPage(t, res, body, http.StatusNotFound, "No such team")
}

func TestAdminEventsFiltersAndOutbox(t *testing.T) {
	h, fp, c := adminHarness(t, 3, func(s *setup) { s.deps.Outbox = fakeOutbox{pending: 3, parked: 1} })
	fp.events = []PageEvent{
		{ID: 2, UserID: bobID, UserEmail: "bob@example.com", Outcome: "admin", Actor: "alice@example.com", MembershipsAdded: []string{"team-001"}},
		{ID: 1, UserID: aliceID, Outcome: "error", Error: "reconcile: graph: unavailable"},
	}
	tests := []struct {
		query string
		want  EventPageQuery
	}{
		{"", EventPageQuery{Limit: adminPageSize}},
		{"user_id=" + aliceID + "&outcome=error", EventPageQuery{UserID: aliceID, Outcome: "error", Limit: adminPageSize}},
		{"outcome=bogus", EventPageQuery{Limit: adminPageSize}},
		{"kind=background", EventPageQuery{Kind: "background", Limit: adminPageSize}},
		{"kind=admin", EventPageQuery{Kind: "admin", Limit: adminPageSize}},
		{"kind=revalidate&outcome=ok&user_id=" + bobID, EventPageQuery{UserID: bobID, Outcome: "ok", Kind: "revalidate", Limit: adminPageSize}},
		{"kind=bogus", EventPageQuery{Limit: adminPageSize}},
	}
	for _, tt := range tests {
		res, body := h.get(c, "/teamgate/admin/events?"+tt.query, nil)
		wantPage(t, res, body, http.StatusOK, "Sync log", "Team 001", "by alice@example.com", "reconcile: graph: unavailable")
		fp.mu.Lock()
		got := fp.lastEventQuery
		fp.mu.Unlock()
		if got != tt.want {
			t.Errorf("?%s queried %+v, want %+v", tt.query, got, tt.want)
		}
	}
	// The chosen source stays selected in the filter form.
	res, body := h.get(c, "/teamgate/admin/events?kind=background", nil)
	wantPage(t, res, body, http.StatusOK, `<option value="background" selected>Background sync</option>`)
	res, body = h.get(c, "/teamgate/admin", nil)
	wantPage(t, res, body, http.StatusOK, "LiteLLM provisioning backlog", "Waiting to be sent to LiteLLM</dt><dd>3", `<span class="badge bad">1</span>`)

	h2, _, c2 := adminHarness(t, 3)
	if _, body := h2.get(c2, "/teamgate/admin", nil); strings.Contains(body, "provisioning backlog") {
		t.Error("backlog panel shown without provisioning")
	}
}
