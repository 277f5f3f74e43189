package graph

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTokenRequest(t *testing.T) {
	ft := newFakeTenant(t)
	env := newTestEnv(t, ft, nil)
	tok, err := env.Token(t.Context())
	if err != nil || !strings.HasPrefix(tok, tokenPrefix) {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	forms := ft.TokenRequests()
	if len(forms) != 1 {
		t.Fatalf("%d token requests", len(forms))
	}
	want := map[string]string{
		"grant_type": "client_credentials", "client_id": testClientID,
		"client_secret": testSecret, "scope": ft.URL() + "/.default",
	}
	for k, v := range want {
		if got := forms[0].Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestTokenCacheAndRefresh(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int
		steps     []time.Duration // clock advances between calls
		wantCalls []int           // tokens issued after each call
	}{
		{name: "hour token refreshed 5 min early", expiresIn: 3600,
			steps:     []time.Duration{0, 54 * time.Minute, 59 * time.Second, time.Second, time.Minute},
			wantCalls: []int{1, 1, 1, 2, 2}},
		{name: "short token refreshed at half life", expiresIn: 120,
			steps:     []time.Duration{0, 59 * time.Second, time.Second},
			wantCalls: []int{1, 1, 2}},
		{name: "no expires_in is never cached", expiresIn: 0,
			steps:     []time.Duration{0, 0},
			wantCalls: []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTenant(t)
			ft.expiresIn = tt.expiresIn
			env := newTestEnv(t, ft, nil)
			for i, d := range tt.steps {
				env.clock.Advance(d)
				if _, err := env.Token(t.Context()); err != nil {
					t.Fatal(err)
				}
				if got := ft.TokensIssued(); got != tt.wantCalls[i] {
					t.Errorf("step %d: tokens issued = %d, want %d", i, got, tt.wantCalls[i])
				}
			}
		})
	}
}

func TestTokenConcurrentCallersShareOneFetch(t *testing.T) {
	ft := newFakeTenant(t)
	env := newTestEnv(t, ft, nil)
	var wg sync.WaitGroup
	toks := make([]string, 20)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], _ = env.Token(t.Context())
		}()
	}
	wg.Wait()
	for i, tok := range toks {
		if tok != toks[0] || tok == "" {
			t.Fatalf("caller %d got %q, caller 0 %q", i, tok, toks[0])
		}
	}
	if n := ft.TokensIssued(); n != 1 {
		t.Errorf("tokens issued = %d, want 1", n)
	}
}

// echoSecret is a token endpoint that repeats the request body in its
// error, as a misbehaving proxy might.
func echoSecret(status int, code string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, status, map[string]any{"error": code,
			"error_description": "AADSTS7000215: Invalid client secret provided: " + r.PostForm.Get("client_secret") + "\r\nTrace ID: abc",
			"error_codes":       []int{7000215}})
	}
}

func TestTokenErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name            string
		handler         http.HandlerFunc
		cfg             func(*Config)
		wantUnavailable bool
		wantText        string
	}{
		{name: "wrong secret", cfg: func(c *Config) { c.ClientSecret = "wrong-" + testSecret }, wantText: "client secret"},
		{name: "invalid_client echoing the secret", handler: echoSecret(401, "invalid_client"), wantText: "AADSTS7000215"},
		{name: "unknown tenant", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": "AADSTS90002: Tenant 'x' not found.", "error_codes": []int{90002}})
		}, wantText: "tenant id is wrong"},
		{name: "500", handler: echoSecret(500, "server_error"), wantUnavailable: true, wantText: "status 500"},
		{name: "503 until exhausted", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
		}, wantUnavailable: true, wantText: "4 attempts"},
		{name: "HTML error page", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			w.Write([]byte("<html>bad gateway " + testSecret + "</html>"))
		}, wantUnavailable: true, wantText: "status 502"},
		{name: "endpoint down", cfg: func(c *Config) { c.AuthorityHost = dead }, wantUnavailable: true, wantText: "4 attempts"},
		{name: "200 without token", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, map[string]any{"token_type": "Bearer"})
		}, wantText: "without an access token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTenant(t)
			if tt.handler != nil {
				ft.SetTokenFunc(tt.handler)
			}
			ft.Graph.Handle("/", &scripted{})
			env := newTestEnv(t, ft, tt.cfg)
			for _, call := range []func() error{
				func() error { _, err := env.Token(t.Context()); return err },
				func() error { _, err := env.UserGroups(t.Context(), "u"); return err },
				func() error { _, err := env.AppGroups(t.Context()); return err },
			} {
				err := call()
				if err == nil {
					t.Fatal("no error")
				}
				if errors.Is(err, ErrUnavailable) != tt.wantUnavailable {
					t.Errorf("errors.Is(%v, ErrUnavailable) = %v", err, !tt.wantUnavailable)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("error %q does not say %q", err, tt.wantText)
				}
				if strings.Contains(err.Error(), testSecret) {
					t.Errorf("error contains the client secret: %q", err)
				}
			}
			if len(ft.Requests()) != 0 {
				t.Error("Graph was called without a token")
			}
		})
	}
}

func TestSecretAndTokenNeverInGraphErrors(t *testing.T) {
	ft := newFakeTenant(t)
	ft.Graph.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		graphError(w, 400, "BadRequest", "you sent "+r.Header.Get("Authorization")+" and "+testSecret)
	})
	env := newTestEnv(t, ft, nil)
	_, err := env.UserGroups(t.Context(), "u")
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), tokenPrefix) {
		t.Errorf("error leaks a credential: %q", err)
	}
}
