package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func randomHex(t *testing.T) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem
	}{
		{"defaults", Defaults(), nil},
		{"postgres", Config{URL: "postgres://u:pw@db:5432/tg?sslmode=require"}, nil},
		{"postgresql scheme", Config{URL: "postgresql://db/tg"}, nil},
		{"sqlite triple slash", Config{URL: "sqlite:///var/lib/teamgate/db.sqlite"}, nil},
		{"empty url", Config{}, []string{"database.url: required"}},
		{"unknown scheme", Config{URL: "mysql://u:secret@db/tg"}, []string{`database.url: unsupported scheme "mysql"`}},
		{"no scheme", Config{URL: "teamgate.db"}, []string{`database.url: unsupported scheme "none"`}},
		{"sqlite without path", Config{URL: "sqlite:"}, []string{"database.url: sqlite URL has no file path"}},
		{"sqlite with query", Config{URL: "sqlite:x.db?_pragma=foo"}, []string{"database.url: sqlite path must not contain '?'"}},
		{"postgres without host", Config{URL: "postgres:///tg"}, []string{"database.url: postgres URL has no host"}},
		{"every problem at once", Config{URL: "", MaxOpenConns: -1, MaxIdleConns: -2, ConnMaxLifetime: -time.Second}, []string{
			"database.url:", "database.max_open_conns:", "database.max_idle_conns: must be 0 or more", "database.conn_max_lifetime:",
		}},
		{"idle above open", Config{URL: "sqlite:x.db", MaxOpenConns: 2, MaxIdleConns: 3}, []string{"database.max_idle_conns: must not exceed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %q", tc.want)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if n := len(strings.Split(msg, "\n")); n != len(tc.want) {
				t.Errorf("error has %d lines, want %d: %q", n, len(tc.want), msg)
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("error leaks the password: %q", msg)
			}
			if strings.Contains(msg, "database.url") && !strings.Contains(msg, "sqlite:PATH") {
				t.Errorf("error %q does not name the accepted forms", msg)
			}
		})
	}
}

func TestOpenErrorsNeverLeakPassword(t *testing.T) {
	tests := []struct{ name, url string }{
		{"unknown scheme", "mysql://admin:s3cr3t-pw@db/tg"},
		{"unreachable postgres", "postgres://admin:s3cr3t-pw@127.0.0.1:1/tg?sslmode=disable&connect_timeout=2"},
		{"malformed postgres", "postgres://admin:s3cr3t-pw@db:port/tg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.url)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open succeeded")
			}
			if strings.Contains(err.Error(), "s3cr3t-pw") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:pw@db:5432/tg?sslmode=require", "postgres://u:xxxxx@db:5432/tg?sslmode=require"},
		{"postgres://db/tg?password=pw&sslmode=disable", "postgres://db/tg?password=xxxxx&sslmode=disable"},
		{"postgres://u@db/tg", "postgres://u@db/tg"},
		{"sqlite:teamgate.db", "sqlite:teamgate.db"},
		{"postgres://u:pw@db:port/tg", "(unparsable database URL)"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := RedactURL(tc.in); got != tc.want {
				t.Errorf("RedactURL = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorsAreSentinels(t *testing.T) {
	err := wrapErr("x", errors.New("driver said no"))
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		t.Errorf("plain driver error mapped to a sentinel: %v", err)
	}
}

func TestConfigDecodesFromYAML(t *testing.T) {
	const doc = "url: postgres://teamgate@db/teamgate\nmax_open_conns: 20\nmax_idle_conns: 4\nconn_max_lifetime: 15m\n"
	cfg := Defaults()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode: %v", err)
	}
	want := Config{URL: "postgres://teamgate@db/teamgate", MaxOpenConns: 20, MaxIdleConns: 4, ConnMaxLifetime: 15 * time.Minute}
	if cfg != want {
		t.Errorf("decoded %+v, want %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
