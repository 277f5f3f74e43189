package graph

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Defaults for the global Azure cloud and for a budget that keeps a sign-in
// waiting at most about 20 s on a throttled Graph.
const (
	DefaultAuthorityHost  = "https://login.microsoftonline.com"
	DefaultGraphURL       = "https://graph.microsoft.com"
	DefaultAppGroupsTTL   = 5 * time.Minute
	DefaultMaxAttempts    = 4
	DefaultMaxRetryTime   = 20 * time.Second
	DefaultRequestTimeout = 30 * time.Second
)

// Config is what the client needs to reach one tenant. Zero values take the
// defaults above. AuthorityHost and GraphURL are configurable for national
// clouds (login.microsoftonline.us / graph.microsoft.us, …) and for the fake
// tenant used in tests.
type Config struct {
	TenantID     string
	ClientID     string
	ClientSecret string

	AuthorityHost string // e.g. https://login.microsoftonline.com
	GraphURL      string // e.g. https://graph.microsoft.com (no /v1.0)

	// ServicePrincipalID is the object id of the Enterprise App; when empty
	// AppGroups is unavailable and every group of a user counts.
	ServicePrincipalID string
	// NestedGroups reads /transitiveMemberOf instead of /memberOf.
	NestedGroups bool

	AppGroupsTTL   time.Duration // how long the app's assigned groups are cached
	MaxAttempts    int           // HTTP attempts per request, first try included
	MaxRetryTime   time.Duration // total time one request may spend retrying
	RequestTimeout time.Duration // bound on one HTTP attempt, body included
}

// withDefaults fills zero values and trims trailing slashes from base URLs,
// so URL building can simply concatenate paths.
func (c Config) withDefaults() Config {
	if c.AuthorityHost == "" {
		c.AuthorityHost = DefaultAuthorityHost
	}
	if c.GraphURL == "" {
		c.GraphURL = DefaultGraphURL
	}
	c.AuthorityHost = strings.TrimRight(c.AuthorityHost, "/")
	c.GraphURL = strings.TrimRight(c.GraphURL, "/")
	if c.AppGroupsTTL == 0 {
		c.AppGroupsTTL = DefaultAppGroupsTTL
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxRetryTime == 0 {
		c.MaxRetryTime = DefaultMaxRetryTime
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	return c
}

// Validate reports every problem at once (after defaults are applied), each
// naming its key as written in the entra: section of the configuration.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	required := func(key, v string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%s is required", key))
		}
	}
	required("tenant_id", c.TenantID)
	required("client_id", c.ClientID)
	required("client_secret", c.ClientSecret)
	if err := checkBaseURL(c.AuthorityHost); err != nil {
		errs = append(errs, fmt.Errorf("authority_host: %w", err))
	}
	if err := checkBaseURL(c.GraphURL); err != nil {
		errs = append(errs, fmt.Errorf("graph_url: %w", err))
	}
	if c.AppGroupsTTL < 0 {
		errs = append(errs, errors.New("app_groups_ttl must not be negative"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, errors.New("max_attempts must be at least 1"))
	}
	if c.MaxRetryTime < 0 {
		errs = append(errs, errors.New("max_retry_time must not be negative"))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, errors.New("request_timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// checkBaseURL accepts absolute http(s) URLs without query or fragment; http
// is allowed so tests and `teamgate dev` can use a local fake tenant.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", raw)
	}
	return nil
}

// String keeps the client secret out of anything that prints a Config.
func (c Config) String() string {
	c.ClientSecret = redactedIfSet(c.ClientSecret)
	type plain Config // drops this method, so %+v does not recurse
	return fmt.Sprintf("%+v", plain(c))
}

// LogValue keeps the client secret out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tenant_id", c.TenantID),
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", redactedIfSet(c.ClientSecret)),
		slog.String("authority_host", c.AuthorityHost),
		slog.String("graph_url", c.GraphURL),
		slog.String("service_principal_id", c.ServicePrincipalID),
		slog.Bool("nested_groups", c.NestedGroups),
	)
}

func redactedIfSet(s string) string {
	if s == "" {
		return ""
	}
	return "[REDACTED]"
}
