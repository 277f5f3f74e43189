package fakeentra

import (
	"net/http"
	"strings"
	"time"
)

// fault is a pending injected failure.
type fault struct {
	pathContains string
	remaining    int
	status       int
	retryAfter   string
}

// FailNext makes the next n requests whose path contains pathContains fail
// with status and a Graph-format error body (code TooManyRequests for 429,
// ServiceUnavailable for 503, …), with a Retry-After header when retryAfter
// is not empty. Requests to the login endpoints (token, authorize, …) get
// the OAuth error shape instead (temporarily_unavailable for 429 and 503). Rules queue up: a request consumes the oldest matching rule
// that has failures left. Failed requests still count in Calls.
func (t *Tenant) FailNext(pathContains string, n int, status int, retryAfter string) {
	if n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = append(t.faults, &fault{pathContains: pathContains, remaining: n, status: status, retryAfter: retryAfter})
}

// SetLatency delays every answer to a request whose path contains
// pathContains by d (d <= 0 removes the delay). The wait ends early, without
// an answer, when the request's context is cancelled, so clients' timeouts
// can be tested without the test itself waiting. With several matching
// rules the longest delay applies.
func (t *Tenant) SetLatency(pathContains string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d <= 0 {
		delete(t.latency, pathContains)
		return
	}
	t.latency[pathContains] = d
}

// Calls returns how many requests whose path contains pathContains the
// tenant has received so far, including the ones answered with an injected
// failure. The query string is not part of the path.
func (t *Tenant) Calls(pathContains string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for p, c := range t.calls {
		if strings.Contains(p, pathContains) {
			n += c
		}
	}
	return n
}

func (t *Tenant) countCall(path string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls[path]++
}

// delay waits for the configured latency; false means the request's context
// ended first.
func (t *Tenant) delay(r *http.Request) bool {
	t.mu.Lock()
	var d time.Duration
	for p, l := range t.latency {
		if strings.Contains(r.URL.Path, p) && l > d {
			d = l
		}
	}
	t.mu.Unlock()
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// injectFault answers r with a pending injected failure, if one matches.
func (t *Tenant) injectFault(w http.ResponseWriter, r *http.Request) bool {
	t.mu.Lock()
	var hit *fault
	for i, f := range t.faults {
		if strings.Contains(r.URL.Path, f.pathContains) {
			hit = f
			f.remaining--
			if f.remaining == 0 {
				t.faults = append(t.faults[:i:i], t.faults[i+1:]...)
			}
			break
		}
	}
	t.mu.Unlock()
	if hit == nil {
		return false
	}
	if hit.retryAfter != "" {
		w.Header().Set("Retry-After", hit.retryAfter)
	}
	if strings.HasPrefix(r.URL.Path, "/graph/") {
		writeGraphError(w, r, hit.status, faultCode(hit.status), faultMessage(hit.status))
		return true
	}
	// The login endpoints answer in their own OAuth shape, as Entra does.
	code := "server_error"
	if hit.status == http.StatusTooManyRequests || hit.status == http.StatusServiceUnavailable {
		code = "temporarily_unavailable"
	}
	writeOAuthError(w, hit.status, code, 90033, faultMessage(hit.status))
	return true
}

func faultCode(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusGatewayTimeout:
		return "GatewayTimeout"
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken"
	case http.StatusForbidden:
		return "Authorization_RequestDenied"
	case http.StatusNotFound:
		return "Request_ResourceNotFound"
	case http.StatusBadRequest:
		return "BadRequest"
	}
	return "generalException"
}

func faultMessage(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "Too many requests, please try again later."
	case http.StatusServiceUnavailable:
		return "The service is currently unavailable. Please retry later."
	}
	return "Injected failure: " + http.StatusText(status)
}
