package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestAdminAPIAuth(t *testing.T) {
	tests := []struct {
		name       string
		auth       string
		wantStatus int
	}{
		{"valid", "Bearer " + testAdminToken, http.StatusOK},
		{"scheme case-insensitive", "bearer " + testAdminToken, http.StatusOK},
		{"missing", "", http.StatusUnauthorized},
		{"wrong", "Bearer wrong-token-0123456789", http.StatusUnauthorized},
		{"prefix of the token", "Bearer " + testAdminToken[:10], http.StatusUnauthorized},
		{"token plus suffix", "Bearer " + testAdminToken + "x", http.StatusUnauthorized},
		{"basic", "Basic " + testAdminToken, http.StatusUnauthorized},
		{"bare token", testAdminToken, http.StatusUnauthorized},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := map[string]string{"Accept": "text/html"} // the API answers JSON regardless
			if tt.auth != "" {
				headers["Authorization"] = tt.auth
			}
			res, body := h.get(apiClient(), "/teamgate/api/teams", headers)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type %q", res.Header.Get("Content-Type"))
			}
			if tt.wantStatus == http.StatusUnauthorized && !strings.Contains(body, `"type":"unauthorized"`) {
				t.Errorf("body %s", body)
			}
		})
	}
}

func TestAdminAPIDisabled(t *testing.T) {
	h := newHarness(t, func(s *setup) { s.cfg.Admin.APIToken = "" })
	for _, auth := range []string{"", "Bearer ", "Bearer anything-at-all-here"} {
		res, body := h.get(apiClient(), "/teamgate/api/teams", map[string]string{"Authorization": auth})
		if res.StatusCode != http.StatusNotFound || !strings.Contains(body, `"type":"not_found"`) {
			t.Errorf("auth %q: %d %s", auth, res.StatusCode, body)
		}
	}
}

func TestAdminAPIEndpoints(t *testing.T) {
	h := newHarness(t)
	auth := map[string]string{"Authorization": "Bearer " + testAdminToken}
	tests := []struct {
		path       string
		wantStatus int
		wantJSON   []string
	}{
		{"/teamgate/api/teams", http.StatusOK, []string{`"team_id":"t1"`, `"team_alias":"Engineering"`, `"members":[{"user_id":"` + aliceID + `","role":"user","source":"entra"}]`, `"models":[]`, `"max_budget":null`}},
		{"/teamgate/api/teams/t1", http.StatusOK, []string{`"team_id":"t1"`, `"members":[]`}},
		{"/teamgate/api/teams/nope", http.StatusNotFound, []string{`"type":"not_found"`}},
		{"/teamgate/api/users/" + aliceID, http.StatusOK, []string{`"user_email":"alice@example.com"`, `"teams":["t1"]`, `"models":[]`, `"last_login_at":null`}},
		{"/teamgate/api/users/nope", http.StatusNotFound, []string{`"type":"not_found"`}},
		{"/teamgate/api/sync-events?user_id=u1&limit=2", http.StatusOK, []string{`"id":3`, `"id":2`, `"user_id":"u1"`, `"teams_created":[]`}},
		{"/teamgate/api/sync-events", http.StatusOK, []string{`"id":1`}},
		{"/teamgate/api/sync-events?limit=0", http.StatusBadRequest, []string{`"type":"bad_request"`}},
		{"/teamgate/api/sync-events?limit=x", http.StatusBadRequest, nil},
		{"/teamgate/api/sync-events?limit=501", http.StatusBadRequest, nil},
		{"/teamgate/api/nope", http.StatusNotFound, []string{`"type":"not_found"`}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res, body := h.get(apiClient(), tt.path, auth)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.wantStatus, body)
			}
			for _, w := range tt.wantJSON {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %s:\n%s", w, body)
				}
			}
		})
	}
}

func TestAdminAPIDirectoryFailure(t *testing.T) {
	h := newHarness(t, func(s *setup) { s.deps.Directory = &fakeDirectory{err: errors.New("db down")} })
	res, body := h.get(apiClient(), "/teamgate/api/teams", map[string]string{"Authorization": "Bearer " + testAdminToken})
	if res.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "db down") {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var idpDown atomic.Bool
	tests := []struct {
		name         string
		configure    func(s *setup)
		wantStatus   int
		wantNotReady []string
	}{
		{"ready", nil, http.StatusOK, nil},
		{"database down", func(s *setup) { s.deps.DB = failingPinger{} }, http.StatusServiceUnavailable, []string{"database"}},
		{"discovery failed", func(s *setup) { s.issuer = "http://127.0.0.1:1/tenant/v2.0" }, http.StatusServiceUnavailable, []string{"oidc_discovery"}},
		{"both", func(s *setup) {
			s.deps.DB = failingPinger{}
			s.wrapIDP = downWhen(&idpDown)
			idpDown.Store(true)
		}, http.StatusServiceUnavailable, []string{"database", "oidc_discovery"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*setup)
			if tt.configure != nil {
				opts = append(opts, tt.configure)
			}
			h := newHarness(t, opts...)
			if res, _ := h.get(apiClient(), "/teamgate/healthz", nil); res.StatusCode != http.StatusOK {
				t.Errorf("healthz %d", res.StatusCode)
			}
			res, body := h.get(apiClient(), "/teamgate/readyz", nil)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("readyz %d, want %d: %s", res.StatusCode, tt.wantStatus, body)
			}
			var got struct {
				Status   string   `json:"status"`
				NotReady []string `json:"not_ready"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.NotReady, ",") != strings.Join(tt.wantNotReady, ",") {
				t.Errorf("not_ready = %v, want %v", got.NotReady, tt.wantNotReady)
			}
		})
	}
}

// downWhen makes the fake tenant answer 503 while down is set.
func downWhen(down *atomic.Bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestDiscoveryRecoversOnDemand(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	h := newHarness(t, func(s *setup) { s.wrapIDP = downWhen(&down) })

	res, body := h.get(h.browser(), "/oauth2/start", nil)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "cannot reach Microsoft Entra") {
		t.Fatalf("start while Entra is down: %d\n%s", res.StatusCode, body)
	}
	if res, _ := h.get(apiClient(), "/teamgate/readyz", nil); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz while Entra is down: %d", res.StatusCode)
	}

	down.Store(false)
	if res, _ := h.signIn(h.browser(), "alice@example.com", "/"); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in after Entra came back: %d", res.StatusCode)
	}
	if res, _ := h.get(apiClient(), "/teamgate/readyz", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("readyz after recovery: %d", res.StatusCode)
	}
}

func TestSignOutWithoutDiscoveryGoesToSignedOutPage(t *testing.T) {
	h := newHarness(t, func(s *setup) { s.issuer = "http://127.0.0.1:1/tenant/v2.0" })
	res, _ := h.get(apiClient(), "/oauth2/sign_out", nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/teamgate/signed-out" {
		t.Fatalf("%d to %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestNewRejectsBadSetup(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(c *Config)
		oidc    OIDCConfig
		deps    Deps
		wantErr []string
	}{
		{"everything missing", func(c *Config) { c.Admin.APIToken = testAdminToken }, OIDCConfig{}, Deps{},
			[]string{"session.secret", "oidc: issuer is required", "oidc: client id is required", "Deps.Syncer", "Deps.Sessions", "Deps.Directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			tt.cfg(&cfg)
			_, err := New(t.Context(), cfg, tt.oidc, tt.deps)
			if err == nil {
				t.Fatal("New accepted a broken setup")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
