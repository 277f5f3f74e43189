package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config is the `database:` section of teamgate's configuration.
type Config struct {
	// URL selects the backend: "sqlite:PATH" or "postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=…".
	URL string `yaml:"url"`
	// MaxOpenConns caps the connection pool. On SQLite it caps the readers
	// only: writes always go through one connection (see Open).
	MaxOpenConns int `yaml:"max_open_conns"`
	// MaxIdleConns is how many idle connections the pool keeps.
	MaxIdleConns int `yaml:"max_idle_conns"`
	// ConnMaxLifetime recycles connections (0: never), so a PostgreSQL
	// fail-over or a pooler restart is picked up without a teamgate restart.
	ConnMaxLifetime time.Duration `yaml:"conn_max_lifetime"`
}

// Defaults returns the configuration used when the `database:` section is
// absent: a SQLite file next to the working directory.
func Defaults() Config {
	return Config{
		URL:             "sqlite:teamgate.db",
		MaxOpenConns:    10,
		MaxIdleConns:    5,
		ConnMaxLifetime: 30 * time.Minute,
	}
}

// Validate reports every problem at once, each naming its full key.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := parseURL(c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.MaxOpenConns < 0 {
		errs = append(errs, fmt.Errorf("database.max_open_conns: must be 0 (no limit) or more, got %d", c.MaxOpenConns))
	}
	if c.MaxIdleConns < 0 {
		errs = append(errs, fmt.Errorf("database.max_idle_conns: must be 0 or more, got %d", c.MaxIdleConns))
	}
	if c.MaxOpenConns > 0 && c.MaxIdleConns > c.MaxOpenConns {
		errs = append(errs, fmt.Errorf("database.max_idle_conns: must not exceed database.max_open_conns (%d > %d)", c.MaxIdleConns, c.MaxOpenConns))
	}
	if c.ConnMaxLifetime < 0 {
		errs = append(errs, fmt.Errorf("database.conn_max_lifetime: must be 0 (never) or more, got %s", c.ConnMaxLifetime))
	}
	return errors.Join(errs...)
}

// Options turns the pool settings into Open options.
func (c Config) Options() []Option {
	return []Option{
		WithMaxOpenConns(c.MaxOpenConns),
		WithMaxIdleConns(c.MaxIdleConns),
		WithConnMaxLifetime(c.ConnMaxLifetime),
	}
}

// Dialect names, as returned by Store.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

const acceptedURLs = `accepted forms are "sqlite:PATH" (e.g. sqlite:teamgate.db) and "postgres://USER:PASSWORD@HOST:5432/DB?sslmode=require"`

// parseURL splits a database URL into its dialect and the driver's data
// source name. Errors name the config key and never echo the URL itself, as
// it may hold a password.
func parseURL(raw string) (dialect, dsn string, err error) {
	switch {
	case strings.TrimSpace(raw) == "":
		return "", "", fmt.Errorf("database.url: required; %s", acceptedURLs)
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(raw, "sqlite:")
		// Tolerate the URL-looking spelling sqlite://PATH (sqlite:///abs/path).
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return "", "", fmt.Errorf("database.url: sqlite URL has no file path; %s", acceptedURLs)
		}
		if strings.Contains(path, "?") {
			return "", "", fmt.Errorf("database.url: sqlite path must not contain '?' (connection settings are fixed by teamgate); %s", acceptedURLs)
		}
		return DialectSQLite, path, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		u, err := url.Parse(raw)
		if err != nil {
			// url.Error quotes the whole URL, password included: drop it.
			return "", "", fmt.Errorf("database.url: malformed postgres URL; %s", acceptedURLs)
		}
		if u.Host == "" {
			return "", "", fmt.Errorf("database.url: postgres URL has no host; %s", acceptedURLs)
		}
		return DialectPostgres, raw, nil
	default:
		scheme := "none"
		if i := strings.Index(raw, ":"); i > 0 && i < 20 && !strings.ContainsAny(raw[:i], "/@") {
			scheme = raw[:i]
		}
		return "", "", fmt.Errorf("database.url: unsupported scheme %q; %s", scheme, acceptedURLs)
	}
}

// RedactURL returns the database URL with any password replaced by "xxxxx",
// fit for logs and error messages. Unparsable URLs are hidden entirely.
func RedactURL(raw string) string {
	if strings.HasPrefix(raw, "sqlite:") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable database URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
