package gateway

import (
	"net/http"
	"net/url"
	"testing"
)

// forgedForwarding are a client's claims about its address, scheme and
// host, in the spellings a WSGI/ASGI upstream reads as X-Forwarded-* and
// Forwarded.
var forgedForwarding = map[string]string{
	"X_Forwarded_For":   "6.6.6.6",
	"x_forwarded_for":   "6.6.6.7",
	"X-Forwarded_For":   "6.6.6.8",
	"X_FORWARDED_HOST":  "evil.example",
	"x_forwarded_host":  "evil2.example",
	"X_Forwarded_Proto": "https",
	"x-forwarded_proto": "https",
	"FORWARDED":         "for=6.6.6.6;proto=https;host=evil.example",
	"_forwarded":        "not-a-spelling-of-forwarded",
}

// The upstream receives X-Forwarded-For/-Host/-Proto only as teamgate
// writes them: no inbound copy in any '_' or case spelling, and a trusted
// proxy's canonical ones (only) extended as before.
func TestForgedForwardingHeadersNeverReachUpstream(t *testing.T) {
	tests := []struct {
		name                         string
		trusted                      []string
		wantXFF, wantProto, wantHost string // "" for wantHost: the gateway's own
	}{
		{"untrusted client", nil, "127.0.0.1", "http", ""},
		{"trusted proxy", []string{"127.0.0.1"}, "198.51.100.4, 127.0.0.1", "https", "llm.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(s *setup) { s.cfg.Server.TrustedProxies = tt.trusted })
			u, _ := url.Parse(h.url)
			wantHost := tt.wantHost
			if wantHost == "" {
				wantHost = u.Host
			}
			cookie := h.signedIn("alice@example.com")
			for _, creds := range []map[string]string{withCookie(cookie, nil), {"Authorization": "Bearer sk-1234"}} {
				headers := map[string]string{
					// A trusted proxy's own, canonical headers.
					"X-Forwarded-For": "198.51.100.4", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "llm.example.com",
				}
				for k, v := range forgedForwarding {
					headers[k] = v
				}
				for k, v := range creds {
					headers[k] = v
				}
				if res, body := h.get(apiClient(), "/v1/models", headers); res.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", res.StatusCode, body)
				}
				got := h.upstream.last(t).Header
				for name, v := range got {
					if forwardingHeaders.owns(name) && name != "X-Forwarded-For" && name != "X-Forwarded-Proto" && name != "X-Forwarded-Host" {
						t.Errorf("upstream received %s: %q", name, v)
					}
				}
				if v := got["X-Forwarded-For"]; len(v) != 1 || v[0] != tt.wantXFF {
					t.Errorf("X-Forwarded-For = %q, want [%q]", v, tt.wantXFF)
				}
				if v := got["X-Forwarded-Proto"]; len(v) != 1 || v[0] != tt.wantProto {
					t.Errorf("X-Forwarded-Proto = %q, want [%q]", v, tt.wantProto)
				}
				if v := got["X-Forwarded-Host"]; len(v) != 1 || v[0] != wantHost {
					t.Errorf("X-Forwarded-Host = %q, want [%q]", v, wantHost)
				}
				if v := got.Get("_forwarded"); v != "not-a-spelling-of-forwarded" {
					t.Errorf("an unrelated header was dropped: _forwarded = %q", v)
				}
			}
		})
	}
}
