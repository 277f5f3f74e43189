package gateway

import (
	"net/http"
	"testing"
)

var spoofedAssertions = map[string]string{
	"X-Teamgate-Assertion": "forged.jwt.one",
	"x_teamgate_assertion": "forged.jwt.two",
	"X_TEAMGATE_ASSERTION": "forged.jwt.three",
	"x-Teamgate_Assertion": "forged.jwt.four",
}

func TestSpoofedAssertionNeverReachesUpstream(t *testing.T) {
	tests := []struct {
		name       string
		credential map[string]string // nil: a session cookie
		wantOurs   bool
	}{
		{"signed-in user", nil, true},
		{"API key in Authorization", map[string]string{"Authorization": "Bearer sk-1234"}, false},
		{"API key in x-litellm-api-key", map[string]string{"x-litellm-api-key": "sk-1234"}, false},
		{"anonymous", map[string]string{}, false},
	}
	h := newHarness(t)
	cookie := h.sessionFor("alice@example.com")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := map[string]string{}
			for k, v := range spoofedAssertions {
				headers[k] = v
			}
			if tt.credential == nil {
				headers = withCookie(cookie, headers)
			}
			for k, v := range tt.credential {
				headers[k] = v
			}
			before := len(h.upstream.requests())
			res, _ := h.get(apiClient(), "/v1/models", headers)
			if !tt.wantOurs && tt.credential != nil && len(tt.credential) == 0 {
				if res.StatusCode != http.StatusUnauthorized || len(h.upstream.requests()) != before {
					t.Fatalf("anonymous: %d, reached upstream %v", res.StatusCode, len(h.upstream.requests()) != before)
				}
				return
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			got := assertionSeen(h.upstream.last(t))
			if !tt.wantOurs {
				if len(got) != 0 {
					t.Errorf("the upstream received %q", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("the upstream received %q, want exactly teamgate's assertion", got)
			}
			if _, err := h.verifier().Verify(t.Context(), got[0]); err != nil {
				t.Errorf("the assertion that reached the upstream is not teamgate's: %v", err)
			}
		})
	}
}

func TestAuthorizationHeaderOption(t *testing.T) {
	tests := []struct {
		name          string
		on            bool
		cookie        bool
		clientHeaders map[string]string
		wantAuth      string // "jwt": Bearer + the assertion
		wantAssertion bool
	}{
		{"off by default", false, true, nil, "", true},
		{"on: sent when the client sent none", true, true, nil, "jwt", true},
		{"on: a client's Authorization is kept", true, true, map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, "Basic dXNlcjpwYXNz", true},
		{"on: an API key passes untouched", true, false, map[string]string{"Authorization": "Bearer sk-1234"}, "Bearer sk-1234", false},
		{"on: an API key elsewhere gets no Authorization", true, false, map[string]string{"X-Api-Key": "sk-1234"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(s *setup) { s.cfg.Assertion.AuthorizationHeader = tt.on })
			headers := map[string]string{}
			for k, v := range tt.clientHeaders {
				headers[k] = v
			}
			if tt.cookie {
				headers = withCookie(h.sessionFor("alice@example.com"), headers)
			}
			res, _ := h.get(apiClient(), "/v1/models", headers)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			up := h.upstream.last(t)
			assertions := assertionSeen(up)
			if (len(assertions) == 1) != tt.wantAssertion {
				t.Fatalf("assertions %q, want one: %v", assertions, tt.wantAssertion)
			}
			want := tt.wantAuth
			if want == "jwt" {
				want = "Bearer " + assertions[0]
			}
			if got := up.Header.Values("Authorization"); (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || got[0] != want)) {
				t.Errorf("Authorization = %q, want %q", got, want)
			}
		})
	}
}
