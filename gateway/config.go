package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the gateway's part of config.yaml. The keys are a public
// contract: add to them, never rename them.
type Config struct {
	Server   ServerConfig   `yaml:"server"`
	Upstream UpstreamConfig `yaml:"upstream"`
	Session  SessionConfig  `yaml:"session"`
	Admin    AdminConfig    `yaml:"admin"`
	// Assertion is the signed identity assertion (config_assertion.go).
	Assertion AssertionConfig `yaml:"assertion"`
}

// ServerConfig is where teamgate listens and how browsers reach it.
type ServerConfig struct {
	Listen string `yaml:"listen"`
	// PublicURL is the origin browsers use; the OIDC redirect URI is
	// PublicURL + "/oauth2/callback", and an https URL makes cookies Secure.
	PublicURL string `yaml:"public_url"`
	// MetricsListen serves Prometheus metrics at /metrics on its own
	// address (keep it off the public listener); empty disables metrics.
	MetricsListen string `yaml:"metrics_listen"`
	// SignInPage shows a sign-in page to signed-out browsers instead of
	// sending them straight to Entra (config_pages.go).
	SignInPage bool `yaml:"sign_in_page"`
	// TrustedProxies are the CIDRs (or addresses) of load balancers in
	// front of teamgate. Only from them are X-Forwarded-For/-Proto/-Host
	// and X-Request-Id believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TLSCertFile and TLSKeyFile make teamgate serve HTTPS itself (both or neither).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// ShutdownGrace is how long in-flight requests and streams may run on
	// after SIGTERM before connections are closed.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
}

// UpstreamConfig is the LiteLLM proxy behind teamgate.
type UpstreamConfig struct {
	URL string `yaml:"url"`
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// headers only: LLM streams run for minutes, so there is deliberately no
	// whole-response timeout.
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	DialTimeout           Duration `yaml:"dial_timeout"`
	// GroupsMaxBytes caps the groups header; many servers reject requests
	// whose headers exceed 8 KiB, and 250 team ids are already ~9 KiB.
	GroupsMaxBytes int           `yaml:"groups_max_bytes"`
	Headers        HeadersConfig `yaml:"headers"`
	// APIKeys says what a request carrying its own LiteLLM credential
	// (Authorization: Bearer, x-litellm-api-key, api-key, x-api-key) gets:
	// APIKeysPassthrough (the default) forwards it without a session for
	// LiteLLM to judge; APIKeysSessionRequired treats it like any other
	// request (a session, and identity headers). The second is required
	// when LiteLLM trusts the identity headers (enable_oauth2_proxy_auth):
	// LiteLLM then never checks keys, so passthrough would let anyone in.
	APIKeys string `yaml:"api_keys"`
}

// Values of upstream.api_keys.
const (
	APIKeysPassthrough     = "passthrough"
	APIKeysSessionRequired = "session_required"
)

// HeadersConfig names the identity headers injected into upstream requests.
type HeadersConfig struct {
	User              string `yaml:"user"`
	Email             string `yaml:"email"`
	PreferredUsername string `yaml:"preferred_username"`
	Groups            string `yaml:"groups"`
	TeamID            string `yaml:"team_id"`
}

// SessionConfig configures the session cookie and its server-side record.
type SessionConfig struct {
	// Secret keys the cookies (signing and encryption keys are derived from
	// it with distinct labels). In YAML it may also be a list: the first
	// entry is Secret and signs, the others are PreviousSecrets and are
	// still accepted, so rotating it signs nobody out (session_secrets.go).
	Secret          string   `yaml:"secret"`
	PreviousSecrets []string `yaml:"-"`
	Lifetime        Duration `yaml:"lifetime"`
	// IdleTimeout ends a session that has made no request for this long;
	// 0 disables it (session_idle.go).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// CacheTTL is how long a replica trusts a looked-up session without
	// asking the database again; a revocation on another replica takes at
	// most this long to apply (on the replica that served the sign-out it
	// applies at once).
	CacheTTL   Duration `yaml:"cache_ttl"`
	CookieName string   `yaml:"cookie_name"`
	// RevalidateAfter re-checks a signed-in user with the directory once
	// their last check is this old; 0 turns it off. Unlike the other keys
	// its zero value is not replaced by the default (cmd/teamgate sets
	// DefaultRevalidateAfter before reading the file), so that 0 can mean off.
	RevalidateAfter Duration `yaml:"revalidate_after"`
	// RevalidateGrace is how long past RevalidateAfter a session keeps
	// working while re-checks fail (Graph unavailable). Like
	// RevalidateAfter, its default comes from cmd/teamgate.
	RevalidateGrace Duration `yaml:"revalidate_grace"`
}

// AdminConfig enables the admin JSON API.
type AdminConfig struct {
	// APIToken is the bearer token for /teamgate/api/...; empty disables it.
	APIToken string `yaml:"api_token"`
	// GroupIDs are Entra group object ids whose members may open the admin
	// pages at /teamgate/admin (as may users whose user_role is
	// proxy_admin). Membership is read at sign-in (config_pages.go).
	GroupIDs []string `yaml:"group_ids"`
}

// Defaults, exported so that config.yaml documentation and tests agree.
const (
	DefaultListen                = ":4180"
	DefaultPublicURL             = "http://localhost:4180"
	DefaultShutdownGrace         = 30 * time.Second
	DefaultUpstreamURL           = "http://localhost:4000"
	DefaultResponseHeaderTimeout = 10 * time.Minute
	DefaultDialTimeout           = 10 * time.Second
	DefaultGroupsMaxBytes        = 4096
	DefaultSessionLifetime       = 12 * time.Hour
	DefaultSessionCacheTTL       = 30 * time.Second
	DefaultCookieName            = "teamgate_session"
	DefaultRevalidateAfter       = time.Hour
	DefaultRevalidateGrace       = 4 * time.Hour

	DefaultUserHeader              = "X-Forwarded-User"
	DefaultEmailHeader             = "X-Forwarded-Email"
	DefaultPreferredUsernameHeader = "X-Forwarded-Preferred-Username"
	DefaultGroupsHeader            = "X-Forwarded-Groups"
	DefaultTeamIDHeader            = "X-LiteLLM-Team-Id"

	minSecretBytes   = 32
	minAdminTokenLen = 16
)

// ApplyDefaults fills every unset key with its default. A zero cache_ttl is
// indistinguishable from unset and so becomes the default; set a tiny value
// such as 1ns to effectively disable caching.
func (c *Config) ApplyDefaults() {
	setDefault(&c.Server.Listen, DefaultListen)
	setDefault(&c.Server.PublicURL, DefaultPublicURL)
	if c.Server.TrustedProxies == nil {
		c.Server.TrustedProxies = []string{} // an empty list, as config.yaml writes it
	}
	if c.Server.ShutdownGrace == 0 {
		c.Server.ShutdownGrace = Duration(DefaultShutdownGrace)
	}
	setDefault(&c.Upstream.URL, DefaultUpstreamURL)
	if c.Upstream.ResponseHeaderTimeout == 0 {
		c.Upstream.ResponseHeaderTimeout = Duration(DefaultResponseHeaderTimeout)
	}
	if c.Upstream.DialTimeout == 0 {
		c.Upstream.DialTimeout = Duration(DefaultDialTimeout)
	}
	if c.Upstream.GroupsMaxBytes == 0 {
		c.Upstream.GroupsMaxBytes = DefaultGroupsMaxBytes
	}
	setDefault(&c.Upstream.APIKeys, APIKeysPassthrough)
	h := &c.Upstream.Headers
	setDefault(&h.User, DefaultUserHeader)
	setDefault(&h.Email, DefaultEmailHeader)
	setDefault(&h.PreferredUsername, DefaultPreferredUsernameHeader)
	setDefault(&h.Groups, DefaultGroupsHeader)
	setDefault(&h.TeamID, DefaultTeamIDHeader)
	if c.Session.Lifetime == 0 {
		c.Session.Lifetime = Duration(DefaultSessionLifetime)
	}
	if c.Session.CacheTTL == 0 {
		c.Session.CacheTTL = Duration(DefaultSessionCacheTTL)
	}
	setDefault(&c.Session.CookieName, DefaultCookieName)
	c.Assertion.applyDefaults()
	c.applyPagesDefaults()
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// Validate reports every problem at once, each naming its full key, so an
// operator fixes the file in one pass. Call it after ApplyDefaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	if c.Server.Listen == "" {
		bad("server.listen", "must be set, e.g. \":4180\"")
	} else if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		bad("server.listen", "must be host:port or :port (got %q)", c.Server.Listen)
	}
	_, perrs := parseTrustedProxies(c.Server.TrustedProxies)
	errs = append(errs, perrs...)
	if (c.Server.TLSCertFile == "") != (c.Server.TLSKeyFile == "") {
		bad("server.tls_cert_file", "server.tls_cert_file and server.tls_key_file must be set together")
	}
	if c.Server.ShutdownGrace < 0 {
		bad("server.shutdown_grace", "must not be negative")
	}
	if c.Server.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.Server.MetricsListen); err != nil {
			bad("server.metrics_listen", "must be host:port or :port, or empty to disable metrics (got %q)", c.Server.MetricsListen)
		} else if c.Server.MetricsListen == c.Server.Listen {
			bad("server.metrics_listen", "must differ from server.listen (%q)", c.Server.Listen)
		}
	}
	if err := checkHTTPURL(c.Server.PublicURL); err != nil {
		bad("server.public_url", "%v", err)
	} else if u, _ := url.Parse(c.Server.PublicURL); strings.TrimSuffix(u.Path, "/") != "" {
		bad("server.public_url", "must not have a path: teamgate serves /oauth2/ and /teamgate/ from the root (got %q)", c.Server.PublicURL)
	}

	if err := checkHTTPURL(c.Upstream.URL); err != nil {
		bad("upstream.url", "%v", err)
	}
	if c.Upstream.ResponseHeaderTimeout <= 0 {
		bad("upstream.response_header_timeout", "must be positive (got %s)", c.Upstream.ResponseHeaderTimeout)
	}
	if c.Upstream.DialTimeout <= 0 {
		bad("upstream.dial_timeout", "must be positive (got %s)", c.Upstream.DialTimeout)
	}
	if n := c.Upstream.GroupsMaxBytes; n < 64 || n > 65536 {
		bad("upstream.groups_max_bytes", "must be between 64 and 65536 (got %d)", n)
	}
	if k := c.Upstream.APIKeys; k != APIKeysPassthrough && k != APIKeysSessionRequired {
		bad("upstream.api_keys", "must be %q or %q (got %q)", APIKeysPassthrough, APIKeysSessionRequired, k)
	}
	errs = append(errs, c.Upstream.Headers.validate()...)

	errs = append(errs, c.Session.validateSecrets()...)
	if c.Session.Lifetime < Duration(time.Minute) {
		bad("session.lifetime", "must be at least 1m (got %s)", c.Session.Lifetime)
	}
	if c.Session.CacheTTL < 0 {
		bad("session.cache_ttl", "must not be negative (got %s)", c.Session.CacheTTL)
	} else if c.Session.CacheTTL > c.Session.Lifetime {
		bad("session.cache_ttl", "must not exceed session.lifetime (got %s > %s)", c.Session.CacheTTL, c.Session.Lifetime)
	}
	if it := c.Session.IdleTimeout; it != 0 && (it < Duration(time.Minute) || it > c.Session.Lifetime) {
		bad("session.idle_timeout", "must be 0 (off) or between 1m and session.lifetime (got %s)", it)
	}
	if ra := c.Session.RevalidateAfter; ra != 0 && (ra < Duration(time.Minute) || ra > c.Session.Lifetime) {
		bad("session.revalidate_after", "must be 0 (off) or between 1m and session.lifetime (got %s)", ra)
	}
	if g := c.Session.RevalidateGrace; c.Session.RevalidateAfter != 0 && g < Duration(time.Minute) {
		bad("session.revalidate_grace", "must be at least 1m while session.revalidate_after is on (got %s): a re-check runs beside the request that finds it due", g)
	}
	if !isToken(c.Session.CookieName) {
		bad("session.cookie_name", "must be a non-empty cookie name of letters, digits, '-' or '_' (got %q)", c.Session.CookieName)
	} else if why := validateCookieName(c.Session.CookieName, c.Server.PublicURL); why != "" {
		bad("session.cookie_name", "%s", why) // __Host-/__Secure- rules (cookieprefix.go)
	}

	if t := c.Admin.APIToken; t != "" && len(t) < minAdminTokenLen {
		bad("admin.api_token", "must be at least %d bytes when set (got %d); leave it empty to disable the admin API", minAdminTokenLen, len(t))
	}
	errs = append(errs, c.Assertion.validate(c.Upstream.Headers)...)
	errs = append(errs, c.validatePages()...)
	return errors.Join(errs...)
}

// validate checks the identity header names: each must be a valid header
// name, distinct from the others once case and '_'/'-' are ignored (the way
// they are stripped), and not one of the headers that carry credentials or
// framing.
func (h HeadersConfig) validate() []error {
	var errs []error
	seen := map[string]string{}
	for _, f := range h.fields() {
		key := "upstream.headers." + f.key
		switch norm := normalizeHeaderName(f.value); {
		case !isToken(f.value):
			errs = append(errs, fmt.Errorf("%s: must be a header name of letters, digits, '-' or '_' (got %q)", key, f.value))
		case reservedHeaders[norm]:
			errs = append(errs, fmt.Errorf("%s: %q cannot be used as an identity header", key, f.value))
		case seen[norm] != "":
			errs = append(errs, fmt.Errorf("%s: %q is the same header as upstream.headers.%s", key, f.value, seen[norm]))
		default:
			seen[norm] = f.key
		}
	}
	return errs
}

type headerField struct{ key, value string }

func (h HeadersConfig) fields() []headerField {
	return []headerField{
		{"user", h.User},
		{"email", h.Email},
		{"preferred_username", h.PreferredUsername},
		{"groups", h.Groups},
		{"team_id", h.TeamID},
	}
}

// reservedHeaders may not be configured as identity headers: stripping them
// would break authentication, cookies or HTTP framing.
var reservedHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"host": true, "connection": true, "content-length": true, "content-type": true,
	"transfer-encoding": true, "te": true, "trailer": true, "upgrade": true, "keep-alive": true,
	"x-litellm-api-key": true, "api-key": true, "x-api-key": true, "x-request-id": true,
	"x-forwarded-for": true, "x-forwarded-host": true, "x-forwarded-proto": true, "forwarded": true,
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("must be an absolute http(s) URL (got %q)", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not have a query or fragment (got %q)", raw)
	}
	return nil
}

// isToken reports whether s is a non-empty run of letters, digits, '-' and
// '_': valid both as an HTTP header name and as a cookie name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("10m", "12h", "30s").
type Duration time.Duration

// UnmarshalYAML accepts a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration must be a string such as \"10m\"", n.Line)
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q (use e.g. \"30s\", \"10m\", \"12h\")", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// Std returns the standard library duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
