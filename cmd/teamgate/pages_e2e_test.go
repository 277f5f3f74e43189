package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
)

// The same pages end to end without a browser (cookie-jar client), so that
// the store adapters are covered wherever Chromium is missing.
func TestPagesEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		adminGroup := fakeentra.DemoID(fakeentra.DemoAdminGroup)
		e := startE2E(t, st, e2eOptions{tweak: func(c *Config) { c.Admin.GroupIDs = []string{adminGroup} }})
		gw := e.gw.URL
		alice := e.browser()
		alice.signIn(gw, "/", id("alice"))

		res, body := alice.get(gw + "/teamgate/me")
		if res.StatusCode != 200 || !strings.Contains(body, "Data Science") || !strings.Contains(body, "Joined (2)") {
			t.Fatalf("/teamgate/me: %d\n%.1500s", res.StatusCode, body)
		}
		token := formToken(t, body)
		res, body = alice.postForm(gw+"/teamgate/me/default-team", url.Values{"csrf_token": {token}, "team_id": {id("engineering")}})
		if res.StatusCode != 200 || !strings.Contains(body, "Saved. Your requests now act for Engineering") {
			t.Fatalf("save default team: %d\n%.1500s", res.StatusCode, body)
		}
		alice.get(gw + "/v1/models")
		if got := e.upstream.last(t).Header.Get("X-LiteLLM-Team-Id"); got != id("engineering") {
			t.Errorf("X-LiteLLM-Team-Id after choosing = %q", got)
		}
		// The choice is in the database: a new session of hers keeps it.
		alice2 := e.browser()
		alice2.signIn(gw, "/", id("alice"))
		if got := e.upstream.last(t).Header.Get("X-LiteLLM-Team-Id"); got != id("engineering") {
			t.Errorf("X-LiteLLM-Team-Id in a new session = %q", got)
		}

		carol := e.browser()
		carol.signIn(gw, "/", id("carol"))
		if res, _ := carol.get(gw + "/teamgate/admin"); res.StatusCode != 403 {
			t.Errorf("carol on /teamgate/admin: %d, want 403", res.StatusCode)
		}

		res, body = alice.get(gw + "/teamgate/admin?page=6")
		if res.StatusCode != 200 || !strings.Contains(body, "251–255 of 255 teams") {
			t.Fatalf("admin teams, last page: %d\n%.1500s", res.StatusCode, body)
		}
		// bob has signed in once, so an admin can add him to Finance by hand;
		// his next sign-in keeps that manual membership.
		e.browser().signIn(gw, "/", id("bob"))
		res, body = alice.postForm(gw+"/teamgate/admin/members/add",
			url.Values{"csrf_token": {token}, "team_id": {id("finance")}, "user": {"bob@example.com"}})
		if res.StatusCode != 200 || !strings.Contains(body, "as a manual member") {
			t.Fatalf("add bob to Finance: %d\n%.1500s", res.StatusCode, body)
		}
		e.browser().signIn(gw, "/", id("bob"))
		if got := e.upstream.last(t).Header.Get("X-Forwarded-Groups"); !strings.Contains(got, id("finance")) {
			t.Errorf("bob's groups after the sync = %q, want the manual Finance membership kept", got)
		}
		res, body = alice.get(gw + "/teamgate/admin/events?outcome=admin")
		if res.StatusCode != 200 || !strings.Contains(body, "by alice@example.com") || !strings.Contains(body, "Joined (1): Finance") {
			t.Errorf("admin events: %d\n%.2000s", res.StatusCode, body)
		}
	})
}

var tokenInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func formToken(t *testing.T, page string) string {
	t.Helper()
	m := tokenInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token in:\n%.800s", page)
	}
	return m[1]
}

// postForm submits a form as the page would and follows the redirect.
func (b *browser) postForm(rawURL string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return do(b.t, b.client, req)
}
