package gateway

import (
	"strings"
	"testing"
	"time"
)

func TestAssertionDefaults(t *testing.T) {
	c := validConfig()
	a := c.Assertion
	if !a.On() || a.Alg != "ES256" || a.KeyFile != "" || a.Audience != "" || a.Lifetime.Std() != 5*time.Minute ||
		a.Header != "X-Teamgate-Assertion" || a.AuthorizationHeader {
		t.Errorf("defaults = %+v", a)
	}
	if got := a.audience(c.Upstream.URL); got != "http://localhost:4000" {
		t.Errorf("default audience = %q, want upstream.url", got)
	}
	off := false
	c.Assertion.Enabled = &off
	c.ApplyDefaults()
	if c.Assertion.On() {
		t.Error("an explicit enabled: false was overridden")
	}
}

func TestAssertionValidate(t *testing.T) {
	off := false
	tests := []struct {
		name   string
		mutate func(*AssertionConfig)
		want   string // "" for valid
	}{
		{"defaults", func(*AssertionConfig) {}, ""},
		{"RS256", func(a *AssertionConfig) { a.Alg = "RS256" }, ""},
		{"HS256", func(a *AssertionConfig) { a.Alg = "HS256" }, "assertion.alg: must be ES256 or RS256"},
		{"lifetime over 5m", func(a *AssertionConfig) { a.Lifetime = Duration(6 * time.Minute) }, "assertion.lifetime: must be between 30s and 5m0s"},
		{"lifetime under 30s", func(a *AssertionConfig) { a.Lifetime = Duration(time.Second) }, "assertion.lifetime"},
		{"custom audience", func(a *AssertionConfig) { a.Audience = "litellm" }, ""},
		{"audience with a newline", func(a *AssertionConfig) { a.Audience = "a\nb" }, "assertion.audience"},
		{"header with a space", func(a *AssertionConfig) { a.Header = "X Assertion" }, "assertion.header: must be a header name"},
		{"Authorization as the header", func(a *AssertionConfig) { a.Header = "authorization" }, "assertion.header: \"authorization\" cannot carry"},
		{"an identity header", func(a *AssertionConfig) { a.Header = "x_forwarded_user" }, "same header as upstream.headers.user"},
		{"authorization_header while off", func(a *AssertionConfig) { a.Enabled = &off; a.AuthorizationHeader = true }, "assertion.authorization_header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c.Assertion)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
