package gateway

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Every failure a user can meet has a page in plain words with a next step
// and the request id; a Microsoft error code is shown only next to its
// explanation.
func TestErrorPagesExplainEveryFailure(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		err  *statusError
		want []string
	}{
		{"not assigned (AADSTS50105)", entraError("access_denied", "AADSTS50105: The signed in user is not assigned", "/oauth2/start"),
			[]string{"You are not assigned to this application", "has not been given access", "Ask your administrator to assign you", "AADSTS50105"}},
		{"consent required (AADSTS65001)", entraError("consent_required", "AADSTS65001: The user or administrator has not consented", "/oauth2/start"),
			[]string{"has not been approved", "grant admin consent", "AADSTS65001"}},
		{"consent required without a code", entraError("consent_required", "", "/oauth2/start"),
			[]string{"has not been approved", "grant admin consent"}},
		{"unknown AADSTS code", entraError("server_error", "AADSTS999999: something new", "/oauth2/start"),
			[]string{"Microsoft Entra hit an error", "Wait a moment and try again", "AADSTS999999", "Sign in again"}},
		{"Entra unavailable at sign-in", errEntraUnreachable("/", errors.New("dial tcp")),
			[]string{"Microsoft Entra is unavailable", "Wait a moment and try again", "Sign in again"}},
		{"Graph unavailable during the sync", syncFailure(&SyncError{Kind: SyncUnavailable, Err: errors.New("503")}, "/"),
			[]string{"Microsoft Entra is unavailable", "could not read your groups", "Wait a moment and try again"}},
		{"missing Graph permission", syncFailure(&SyncError{Kind: SyncPermission, Permission: "GroupMember.Read.All", Err: errors.New("403")}, "/"),
			[]string{"teamgate lacks a permission", "Contact your administrator", "request id"}},
		{"session expired (a form)", errSessionExpired("/teamgate/me"),
			[]string{"Your session has expired", "Sign in again", "/oauth2/start?rd=%2Fteamgate%2Fme"}},
		{"sign-in link expired or reused", errSignInExpired("/", errors.New("state")),
			[]string{"Sign-in link expired or reused", "Start the sign-in again", "Sign in again"}},
		{"form expired", errFormExpired("/teamgate/me", errCSRFToken),
			[]string{"This form has expired", "reload the page"}},
		{"not an admin", errAdminsOnly(),
			[]string{"Administrators only", "ask your administrator", "Back to my teams"}},
		{"database down", errPageData(errors.New("db")),
			[]string{"temporarily unavailable", "Wait a moment and reload"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := renderFailure(t, h, func(w http.ResponseWriter, r *http.Request) { h.gw.writeError(w, r, tt.err) })
			for _, s := range append(tt.want, "Request ID <code>req-42</code>", "What you can do") {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q:\n%s", s, body)
				}
			}
			if tt.err.Code != "" && !strings.Contains(body, "Microsoft Entra reported this as error <code>"+tt.err.Code+"</code>") {
				t.Errorf("code %s is not shown with its explanation", tt.err.Code)
			}
			if strings.Contains(body, "The signed in user") || strings.Contains(body, "something new") {
				t.Error("the page repeats Entra's raw error text")
			}
		})
	}

	t.Run("upstream unavailable", func(t *testing.T) {
		dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		body := renderFailure(t, h, func(w http.ResponseWriter, r *http.Request) { h.gw.proxyError(w, r, dial) })
		for _, s := range []string{"Service unreachable", "could not reach the service", "Wait a moment and try again", "Request ID <code>req-42</code>"} {
			if !strings.Contains(body, s) {
				t.Errorf("page lacks %q:\n%s", s, body)
			}
		}
	})
}

func renderFailure(t *testing.T, h *harness, write func(http.ResponseWriter, *http.Request)) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set("Accept", "text/html")
	req = req.WithContext(withRequestInfo(req.Context(), &requestInfo{id: "req-42"}))
	write(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type = %q", ct)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	return rec.Body.String()
}
