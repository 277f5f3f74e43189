package graph

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted answers the first len(steps) requests with the given steps and
// then succeeds with an empty page.
type scripted struct {
	mu    sync.Mutex
	steps []func(w http.ResponseWriter, r *http.Request)
	calls int
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := s.calls
	s.calls++
	s.mu.Unlock()
	if i < len(s.steps) {
		s.steps[i](w, r)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": []any{groupItem("g-1", "One")}})
}

func (s *scripted) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func status(code int, gcode string, header ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		graphError(w, code, gcode, "answer "+gcode)
	}
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestRetries(t *testing.T) {
	now := newFakeClock().Now()
	tests := []struct {
		name      string
		cfg       func(*Config)
		opts      []Option
		steps     []func(http.ResponseWriter, *http.Request)
		wantCalls int
		wantSlept []time.Duration
		check     func(t *testing.T, err error)
	}{
		{
			name:      "two 429s with Retry-After then success",
			steps:     []func(http.ResponseWriter, *http.Request){status(429, "TooManyRequests", "Retry-After", "3"), status(429, "TooManyRequests", "Retry-After", "5")},
			wantCalls: 3, wantSlept: []time.Duration{3 * time.Second, 5 * time.Second},
		},
		{
			name:      "Retry-After as an HTTP date",
			steps:     []func(http.ResponseWriter, *http.Request){status(503, "ServiceUnavailable", "Retry-After", now.Add(7*time.Second).Format(http.TimeFormat))},
			wantCalls: 2, wantSlept: []time.Duration{7 * time.Second},
		},
		{
			name:      "504 without Retry-After backs off with jitter",
			steps:     []func(http.ResponseWriter, *http.Request){status(504, "GatewayTimeout"), status(504, "GatewayTimeout"), status(504, "GatewayTimeout")},
			wantCalls: 4, wantSlept: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second},
		},
		{
			name: "connection dropped is retried",
			// Without keep-alives the transport cannot hide the failure
			// by retrying on a fresh connection itself.
			opts:      []Option{WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}})},
			steps:     []func(http.ResponseWriter, *http.Request){hangUp},
			wantCalls: 2, wantSlept: []time.Duration{250 * time.Millisecond},
		},
		{
			name: "503 exhausting attempts",
			steps: []func(http.ResponseWriter, *http.Request){
				status(503, "ServiceUnavailable", "Retry-After", "1"), status(503, "ServiceUnavailable", "Retry-After", "1"),
				status(503, "ServiceUnavailable", "Retry-After", "1"), status(503, "ServiceUnavailable", "Retry-After", "1"),
				status(503, "ServiceUnavailable", "Retry-After", "1"),
			},
			wantCalls: 4, wantSlept: []time.Duration{time.Second, time.Second, time.Second},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "4 attempts") || !strings.Contains(err.Error(), "status 503") {
					t.Errorf("err = %v, want ErrUnavailable naming 4 attempts and status 503", err)
				}
			},
		},
		{
			name:      "Retry-After beyond the budget gives up without sleeping",
			steps:     []func(http.ResponseWriter, *http.Request){status(429, "TooManyRequests", "Retry-After", "3600")},
			wantCalls: 1,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "status 429") {
					t.Errorf("err = %v, want ErrUnavailable naming status 429", err)
				}
			},
		},
		{
			name: "budget spent by earlier waits",
			cfg:  func(c *Config) { c.MaxRetryTime = 10 * time.Second; c.MaxAttempts = 10 },
			steps: []func(http.ResponseWriter, *http.Request){
				status(429, "TooManyRequests", "Retry-After", "6"), status(429, "TooManyRequests", "Retry-After", "6"),
			},
			wantCalls: 2, wantSlept: []time.Duration{6 * time.Second},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("err = %v, want ErrUnavailable", err)
				}
			},
		},
		{
			name:      "400 is not retried",
			steps:     []func(http.ResponseWriter, *http.Request){status(400, "BadRequest")},
			wantCalls: 1,
			check:     wantAPIError(400, "BadRequest", false),
		},
		{
			name:      "404 is not retried",
			steps:     []func(http.ResponseWriter, *http.Request){status(404, "Request_ResourceNotFound")},
			wantCalls: 1,
			check:     wantAPIError(404, "Request_ResourceNotFound", false),
		},
		{
			name:      "500 is not retried but is unavailable",
			steps:     []func(http.ResponseWriter, *http.Request){status(500, "generalException")},
			wantCalls: 1,
			check:     wantAPIError(500, "generalException", true),
		},
		{
			name:      "403 is a permission error, not retried",
			steps:     []func(http.ResponseWriter, *http.Request){status(403, "Authorization_RequestDenied")},
			wantCalls: 1,
			check: func(t *testing.T, err error) {
				var pe *PermissionError
				if !errors.As(err, &pe) || pe.Permission != PermGroupMemberReadAll || pe.Code != "Authorization_RequestDenied" || pe.Status != 403 {
					t.Errorf("err = %#v, want a PermissionError naming %s", err, PermGroupMemberReadAll)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTenant(t)
			s := &scripted{steps: tt.steps}
			ft.Graph.Handle("GET /v1.0/users/{id}/memberOf", s)
			env := newTestEnv(t, ft, tt.cfg, tt.opts...)
			_, err := env.UserGroups(t.Context(), "u")
			if tt.check != nil {
				tt.check(t, err)
			} else if err != nil {
				t.Fatalf("UserGroups: %v", err)
			}
			if s.Calls() != tt.wantCalls {
				t.Errorf("calls = %d, want %d", s.Calls(), tt.wantCalls)
			}
			if got := env.sleeper.Slept(); !slices.Equal(got, tt.wantSlept) {
				t.Errorf("slept %v, want %v", got, tt.wantSlept)
			}
		})
	}
}

func wantAPIError(status int, code string, unavailable bool) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != status || ae.Code != code {
			t.Fatalf("err = %#v, want APIError %d %s", err, status, code)
		}
		if errors.Is(err, ErrUnavailable) != unavailable {
			t.Errorf("errors.Is(err, ErrUnavailable) = %v, want %v", !unavailable, unavailable)
		}
	}
}

func TestPermissionErrorNamesEndpointPermission(t *testing.T) {
	tests := []struct {
		name string
		call func(*Client) error
		perm string
	}{
		{name: "memberOf", perm: PermGroupMemberReadAll, call: func(c *Client) error { _, err := c.UserGroups(context.Background(), "u"); return err }},
		{name: "user", perm: PermUserReadAll, call: func(c *Client) error { _, err := c.User(context.Background(), "u"); return err }},
		{name: "appRoleAssignedTo", perm: PermApplicationReadAll, call: func(c *Client) error { _, err := c.AppGroups(context.Background()); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTenant(t)
			ft.Graph.HandleFunc("/", status(403, "Authorization_RequestDenied"))
			env := newTestEnv(t, ft, nil)
			err := tt.call(env.Client)
			var pe *PermissionError
			if !errors.As(err, &pe) || pe.Permission != tt.perm || !strings.Contains(err.Error(), tt.perm) {
				t.Errorf("err = %v, want a PermissionError naming %s", err, tt.perm)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Error("a permission error must not read as unavailable")
			}
		})
	}
}

func TestUnauthorizedGetsOneFreshToken(t *testing.T) {
	ft := newFakeTenant(t)
	s := &scripted{}
	ft.Graph.Handle("GET /v1.0/users/{id}/memberOf", s)
	env := newTestEnv(t, ft, nil)
	if _, err := env.UserGroups(t.Context(), "u"); err != nil {
		t.Fatal(err)
	}
	ft.Revoke() // Graph now refuses the cached, unexpired token
	got, err := env.UserGroups(t.Context(), "u")
	if err != nil || len(got) != 1 {
		t.Fatalf("after revocation: %v, %v", got, err)
	}
	if n := ft.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
	}
	if len(env.sleeper.Slept()) != 0 {
		t.Error("a 401 must not back off")
	}
}

func TestUnauthorizedTwiceIsAnError(t *testing.T) {
	ft := newFakeTenant(t)
	s := &scripted{steps: []func(http.ResponseWriter, *http.Request){
		status(401, "InvalidAuthenticationToken"), status(401, "InvalidAuthenticationToken"),
	}}
	ft.Graph.Handle("GET /v1.0/users/{id}/memberOf", s)
	env := newTestEnv(t, ft, nil)
	_, err := env.UserGroups(t.Context(), "u")
	wantAPIError(401, "InvalidAuthenticationToken", false)(t, err)
	if s.Calls() != 2 || ft.TokensIssued() != 2 {
		t.Errorf("calls = %d, tokens = %d; want 2 and 2", s.Calls(), ft.TokensIssued())
	}
}

func TestCancelStopsBackoff(t *testing.T) {
	ft := newFakeTenant(t)
	s := &scripted{steps: []func(http.ResponseWriter, *http.Request){status(503, "ServiceUnavailable", "Retry-After", "10")}}
	ft.Graph.Handle("GET /v1.0/users/{id}/memberOf", s)
	ctx, cancel := context.WithCancel(t.Context())
	var asked time.Duration
	sleep := func(ctx context.Context, d time.Duration) error {
		asked = d
		cancel() // the user gave up while we wait
		<-ctx.Done()
		return ctx.Err()
	}
	env := newTestEnv(t, ft, nil, WithSleep(sleep))
	_, err := env.UserGroups(ctx, "u")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if asked != 10*time.Second || s.Calls() != 1 {
		t.Errorf("asked to sleep %v, calls %d; want 10s and 1", asked, s.Calls())
	}
}

func TestDefaultSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sleepContext(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		in     string
		want   time.Duration
		wantOK bool
	}{
		{name: "absent", in: ""},
		{name: "seconds", in: "3", want: 3 * time.Second, wantOK: true},
		{name: "zero", in: "0", want: 0, wantOK: true},
		{name: "spaces", in: " 12 ", want: 12 * time.Second, wantOK: true},
		{name: "date", in: "Sat, 01 Mar 2025 12:00:30 GMT", want: 30 * time.Second, wantOK: true},
		{name: "past date", in: "Sat, 01 Mar 2025 11:00:00 GMT", want: 0, wantOK: true},
		{name: "huge", in: "99999999999999999999999", want: 1<<63 - 1, wantOK: true},
		{name: "negative", in: "-5"},
		{name: "fraction", in: "1.5"},
		{name: "garbage", in: "soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestObserverSeesEveryAttempt(t *testing.T) {
	ft := newFakeTenant(t)
	ft.Graph.Handle("GET /v1.0/users/{id}/memberOf", &scripted{steps: []func(http.ResponseWriter, *http.Request){
		status(429, "TooManyRequests", "Retry-After", "1"),
	}})
	var mu sync.Mutex
	var events []RequestEvent
	env := newTestEnv(t, ft, nil, WithObserver(func(e RequestEvent) {
		mu.Lock()
		defer mu.Unlock()
		e.Duration = 0
		events = append(events, e)
	}))
	if _, err := env.UserGroups(t.Context(), "u"); err != nil {
		t.Fatal(err)
	}
	want := []RequestEvent{
		{Endpoint: "token", Status: 200, Attempt: 1},
		{Endpoint: "memberOf", Status: 429, Attempt: 1, Throttled: true},
		{Endpoint: "memberOf", Status: 200, Attempt: 2},
	}
	if !slices.Equal(events, want) {
		t.Errorf("events = %+v, want %+v", events, want)
	}
}

func TestBodyReadIsBounded(t *testing.T) {
	ft := newFakeTenant(t)
	var served atomic.Int64
	ft.Graph.HandleFunc("GET /v1.0/users/{id}/memberOf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := []byte(strings.Repeat(" ", 1<<20))
		for range 20 {
			n, err := w.Write(chunk)
			served.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	env := newTestEnv(t, ft, nil)
	_, err := env.UserGroups(t.Context(), "u")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v, want a size error", err)
	}
}

func TestUnreachableGraph(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	ft := newFakeTenant(t)
	env := newTestEnv(t, ft, func(c *Config) { c.GraphURL = dead })
	_, err = env.UserGroups(t.Context(), "u")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "4 attempts") {
		t.Errorf("err = %v, want ErrUnavailable after 4 attempts", err)
	}
}
