package main

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/teamgate/teamgate/sync/fakeentra"
)

var pageRequestID = regexp.MustCompile(`Request ID <code>([^<]+)</code>`)

// `teamgate dev` shows the pages: alice, the demo administrator, opens
// /teamgate/me and the admin pages with every demo team; bob gets 403 there.
// Each page quotes the request id of its X-Request-Id header and of its
// access-log line.
func TestDevPagesForDemoAdmin(t *testing.T) {
	logs := &syncBuffer{}
	d := startDevT(t, devOptions{listen: "127.0.0.1:0", dbURL: "sqlite:" + filepath.Join(t.TempDir(), "dev.db"), directory: fakeentra.DemoDirectory()}, logs)

	e := &e2e{t: t}
	alice, bob := e.browser(), e.browser()
	alice.signIn(d.publicURL, "/", fakeentra.DemoID("alice"))
	bob.signIn(d.publicURL, "/", fakeentra.DemoID("bob"))

	for _, tc := range []struct {
		name   string
		b      *browser
		path   string
		status int
		want   []string
	}{
		{"alice's teams", alice, "/teamgate/me", http.StatusOK, []string{"Alice Adams", "teamgate administrator", "Data Science", `href="/teamgate/admin"`}},
		{"admin teams", alice, "/teamgate/admin", http.StatusOK, []string{"1–50 of 255 teams", "Engineering"}},
		{"admin users", alice, "/teamgate/admin/users", http.StatusOK, []string{"alice@example.com", "bob.brown@example.com"}},
		{"sync log", alice, "/teamgate/admin/events", http.StatusOK, []string{"Sync log", "Teams created (255)"}},
		{"bob's teams", bob, "/teamgate/me", http.StatusOK, []string{"Bob Brown", "Platform"}},
		{"bob is no admin", bob, "/teamgate/admin", http.StatusForbidden, []string{"Administrators only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := tc.b.get(d.publicURL + tc.path)
			if res.StatusCode != tc.status {
				t.Fatalf("%s: %d, want %d\n%.1000s", tc.path, res.StatusCode, tc.status, body)
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("%s does not show %q:\n%.1500s", tc.path, s, body)
				}
			}
			if tc.name == "bob's teams" && strings.Contains(body, `href="/teamgate/admin"`) {
				t.Error("bob's page links to the admin pages")
			}
			m := pageRequestID.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("%s shows no request id", tc.path)
			}
			if got := res.Header.Get("X-Request-Id"); got != m[1] {
				t.Errorf("X-Request-Id %q, the page shows %q", got, m[1])
			}
			if !hasAccessLine(logs.String(), m[1], tc.path) {
				t.Errorf("no access-log line for %s with request_id=%s:\n%s", tc.path, m[1], logs.String())
			}
		})
	}
}

// hasAccessLine finds dev's text access-log line of a request.
func hasAccessLine(logs, id, path string) bool {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "msg=request ") && strings.Contains(l, "request_id="+id) && strings.Contains(l, "path="+path+" ") {
			return true
		}
	}
	return false
}
