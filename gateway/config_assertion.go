package gateway

import (
	"fmt"
	"strings"
	"time"

	"github.com/teamgate/teamgate/gateway/assertion"
)

// AssertionConfig configures the signed identity assertion: a short-lived
// JWT sent with every proxied request of a signed-in user, verifiable with
// the JWKS at /.well-known/teamgate/jwks.json.
type AssertionConfig struct {
	// Enabled defaults to true; a pointer so that an absent key can be told
	// from an explicit false.
	Enabled *bool `yaml:"enabled"`
	// Alg is ES256 (default) or RS256.
	Alg string `yaml:"alg"`
	// KeyFile is a PEM private key (EC P-256 or RSA; PKCS#8, SEC1 or
	// PKCS#1). Empty: a key is generated once and stored in the database,
	// sealed with a key derived from session.secret.
	KeyFile string `yaml:"key_file"`
	// PublishKeyFiles are PEM files with public (or private) keys that the
	// JWKS publishes but that never sign: the previous key_file after it
	// was replaced, until its last assertion has expired.
	PublishKeyFiles []string `yaml:"publish_key_files"`
	// KeyRefresh is how often each replica re-reads the stored signing
	// keys: a key another replica or `teamgate keys rotate` added is
	// published within it, and a due rotation takes effect within it.
	KeyRefresh Duration `yaml:"key_refresh"`
	// Audience is the aud claim; empty means upstream.url.
	Audience string `yaml:"audience"`
	// Lifetime is exp − iat, at most 5m.
	Lifetime Duration `yaml:"lifetime"`
	// Header carries the assertion upstream; a client's copy is always
	// stripped like the other identity headers.
	Header string `yaml:"header"`
	// AuthorizationHeader also sends the assertion as
	// "Authorization: Bearer <jwt>" when the client sent no Authorization
	// (LiteLLM's JWT auth mode reads it there).
	AuthorizationHeader bool `yaml:"authorization_header"`
}

// Assertion defaults.
const (
	DefaultAssertionAlg      = assertion.ES256
	DefaultAssertionLifetime = assertion.MaxLifetime
	DefaultAssertionHeader   = "X-Teamgate-Assertion"
	DefaultKeyRefresh        = time.Minute
	// MaxKeyRefresh bounds assertion.key_refresh: a rotation waits for it
	// (and the JWKS max-age) before its key signs.
	MaxKeyRefresh = time.Hour
)

func (a *AssertionConfig) applyDefaults() {
	if a.Enabled == nil {
		on := true
		a.Enabled = &on
	}
	setDefault(&a.Alg, DefaultAssertionAlg)
	if a.Lifetime == 0 {
		a.Lifetime = Duration(DefaultAssertionLifetime)
	}
	setDefault(&a.Header, DefaultAssertionHeader)
	if a.KeyRefresh == 0 {
		a.KeyRefresh = Duration(DefaultKeyRefresh)
	}
}

// On reports whether assertions are sent (enabled unless set to false).
func (a AssertionConfig) On() bool { return a.Enabled == nil || *a.Enabled }

// audience is the aud claim: assertion.audience, else upstream.url.
func (a AssertionConfig) audience(upstreamURL string) string {
	if a.Audience != "" {
		return a.Audience
	}
	return upstreamURL
}

// validate checks the section; the header is checked even when assertions
// are off, because it is stripped from client requests either way.
func (a AssertionConfig) validate(h HeadersConfig) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("assertion.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if a.Alg != assertion.ES256 && a.Alg != assertion.RS256 {
		bad("alg", "must be %s or %s (got %q)", assertion.ES256, assertion.RS256, a.Alg)
	}
	if l := a.Lifetime.Std(); l < assertion.MinLifetime || l > assertion.MaxLifetime {
		bad("lifetime", "must be between %s and %s (got %s)", assertion.MinLifetime, assertion.MaxLifetime, a.Lifetime)
	}
	if a.Audience != "" && (strings.TrimSpace(a.Audience) != a.Audience || !validHeaderValue(a.Audience)) {
		bad("audience", "must not have control characters or surrounding spaces (got %q); leave it empty for upstream.url", a.Audience)
	}
	norm := normalizeHeaderName(a.Header)
	switch {
	case !isToken(a.Header):
		bad("header", "must be a header name of letters, digits, '-' or '_' (got %q)", a.Header)
	case reservedHeaders[norm]:
		bad("header", "%q cannot carry the assertion", a.Header)
	default:
		for _, f := range h.fields() {
			if normalizeHeaderName(f.value) == norm {
				bad("header", "%q is the same header as upstream.headers.%s", a.Header, f.key)
			}
		}
	}
	if r := a.KeyRefresh.Std(); r < time.Second || r > MaxKeyRefresh {
		bad("key_refresh", "must be between 1s and %s (got %s)", MaxKeyRefresh, a.KeyRefresh)
	}
	for i, f := range a.PublishKeyFiles {
		if strings.TrimSpace(f) == "" {
			bad(fmt.Sprintf("publish_key_files[%d]", i), "must be a file path")
		}
	}
	if a.AuthorizationHeader && !a.On() {
		bad("authorization_header", "needs assertion.enabled: true")
	}
	return errs
}
