package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// An unauthenticated client learns nothing about the admin API's routes:
// whatever the method or path under /teamgate/api/, it gets 401 (404 while
// the API is off), never a 405 with an Allow header or a 404 that tells
// existing paths from others. With the token, 405 and 404 are reported.
func TestAdminAPIRefusesUnauthenticatedWhateverTheMethod(t *testing.T) {
	auth := map[string]string{"Authorization": "Bearer " + testAdminToken}
	wrong := map[string]string{"Authorization": "Bearer wrong-token-0123456789"}
	requests := []struct {
		method, path string
		authorized   int // status with the token
	}{
		{http.MethodPut, "/teamgate/api/teams", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/teamgate/api/teams/t1", http.StatusMethodNotAllowed},
		{http.MethodPost, "/teamgate/api/teams", http.StatusMethodNotAllowed},
		{http.MethodGet, "/teamgate/api/users/x/revoke-sessions", http.StatusMethodNotAllowed},
		{http.MethodPatch, "/teamgate/api/outbox/2/retry", http.StatusMethodNotAllowed},
		{http.MethodGet, "/teamgate/api/nope", http.StatusNotFound},
		{http.MethodPut, "/teamgate/api/nope", http.StatusNotFound},
		{http.MethodGet, "/Teamgate/API/teams", http.StatusNotFound}, // routed case-sensitively
		{http.MethodGet, "/teamgate/api", http.StatusNotFound},
	}
	t.Run("on", func(t *testing.T) {
		h := newHarness(t)
		for _, rq := range requests {
			for _, hdr := range []map[string]string{nil, wrong} {
				res, body := h.do(apiClient(), rq.method, rq.path, hdr)
				if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Allow") != "" ||
					!strings.Contains(body, `"type":"unauthorized"`) {
					t.Errorf("%s %s (token %v): %d, Allow %q, %s; want 401 without Allow", rq.method, rq.path,
						hdr != nil, res.StatusCode, res.Header.Get("Allow"), body)
				}
			}
			res, body := h.do(apiClient(), rq.method, rq.path, auth)
			if res.StatusCode != rq.authorized || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s %s with the token: %d (%s) %s, want %d in JSON", rq.method, rq.path,
					res.StatusCode, res.Header.Get("Content-Type"), body, rq.authorized)
			}
			if rq.authorized == http.StatusMethodNotAllowed && res.Header.Get("Allow") == "" {
				t.Errorf("%s %s with the token: 405 without Allow", rq.method, rq.path)
			}
		}
	})
	t.Run("off", func(t *testing.T) {
		h := newHarness(t, func(s *setup) { s.cfg.Admin.APIToken = "" })
		for _, rq := range requests {
			res, body := h.do(apiClient(), rq.method, rq.path, auth)
			if res.StatusCode != http.StatusNotFound || res.Header.Get("Allow") != "" {
				t.Errorf("%s %s with the API off: %d, Allow %q, %s; want 404", rq.method, rq.path,
					res.StatusCode, res.Header.Get("Allow"), body)
			}
		}
	})
}
