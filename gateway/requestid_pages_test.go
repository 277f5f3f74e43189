package gateway

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var footerID = regexp.MustCompile(`Request ID <code>([^<]*)</code>`)

// The request id a page shows is the one in the X-Request-Id response
// header and in the access-log line of that request, so that a user who
// quotes it leads the operator to the right line.
func TestPageRequestIDMatchesHeaderAndLog(t *testing.T) {
	var fp *fakePages
	h := newHarness(t, withPages(3, &fp))
	alice := h.signedInBrowser("alice@example.com")
	bob := h.signedInBrowser("bob@example.com")
	cookie := h.sessionCookie(bob)

	for _, tc := range []struct {
		name   string
		client *http.Client
		method string
		path   string
		header map[string]string
		status int
	}{
		{"my teams", alice, http.MethodGet, "/teamgate/me", nil, http.StatusOK},
		{"admins only", bob, http.MethodGet, "/teamgate/admin", nil, http.StatusForbidden},
		{"not found", alice, http.MethodGet, "/teamgate/nothing-here", nil, http.StatusNotFound},
		{"signed out", apiClient(), http.MethodGet, "/teamgate/signed-out", map[string]string{"Accept": "text/html"}, http.StatusOK},
		{"sign-out confirmation", noFollow(alice), http.MethodGet, "/oauth2/sign_out", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusOK},
		{"form without a session", apiClient(), http.MethodPost, "/teamgate/me/default-team", map[string]string{"Accept": "text/html"}, http.StatusUnauthorized},
		{"forged form", apiClient(), http.MethodPost, "/teamgate/me/default-team", withCookie(cookie, map[string]string{"Accept": "text/html"}), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := h.do(tc.client, tc.method, tc.path, tc.header)
			if res.StatusCode != tc.status {
				t.Fatalf("%s %s: %d, want %d:\n%.600s", tc.method, tc.path, res.StatusCode, tc.status, body)
			}
			m := footerID.FindStringSubmatch(body)
			if m == nil || m[1] == "" {
				t.Fatalf("the page shows no request id:\n%.600s", body)
			}
			id := m[1]
			if got := res.Header.Get("X-Request-Id"); got != id {
				t.Errorf("X-Request-Id = %q, the page shows %q", got, id)
			}
			line := accessLogLine(t, h.logs.String(), id)
			if line == nil {
				t.Fatalf("no access-log line with request_id %q", id)
			}
			if line["path"] != tc.path || line["method"] != tc.method || line["status"] != float64(tc.status) {
				t.Errorf("the access-log line of %q is %v", id, line)
			}
		})
	}
}

// accessLogLine is the access-log line ("msg":"request") with the request id.
func accessLogLine(t *testing.T, logs, id string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, `"msg":"request"`) || !strings.Contains(l, id) {
			continue
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("access line is not JSON: %v: %s", err, l)
		}
		if line["request_id"] == id {
			if found != nil {
				t.Errorf("two access-log lines with request_id %q", id)
			}
			found = line
		}
	}
	return found
}
