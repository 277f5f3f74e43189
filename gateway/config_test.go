package gateway

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func validConfig() Config {
	var c Config
	c.Session.Secret = strings.Repeat("s", 32)
	c.ApplyDefaults()
	return c
}

func TestApplyDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	checks := []struct {
		key       string
		got, want any
	}{
		{"server.listen", c.Server.Listen, ":4180"},
		{"server.public_url", c.Server.PublicURL, "http://localhost:4180"},
		{"upstream.url", c.Upstream.URL, "http://localhost:4000"},
		{"upstream.response_header_timeout", c.Upstream.ResponseHeaderTimeout.Std(), 10 * time.Minute},
		{"upstream.dial_timeout", c.Upstream.DialTimeout.Std(), 10 * time.Second},
		{"upstream.groups_max_bytes", c.Upstream.GroupsMaxBytes, 4096},
		{"upstream.headers.user", c.Upstream.Headers.User, "X-Forwarded-User"},
		{"upstream.headers.email", c.Upstream.Headers.Email, "X-Forwarded-Email"},
		{"upstream.headers.preferred_username", c.Upstream.Headers.PreferredUsername, "X-Forwarded-Preferred-Username"},
		{"upstream.headers.groups", c.Upstream.Headers.Groups, "X-Forwarded-Groups"},
		{"upstream.headers.team_id", c.Upstream.Headers.TeamID, "X-LiteLLM-Team-Id"},
		{"session.lifetime", c.Session.Lifetime.Std(), 12 * time.Hour},
		{"session.cache_ttl", c.Session.CacheTTL.Std(), 30 * time.Second},
		{"session.cookie_name", c.Session.CookieName, "teamgate_session"},
		{"admin.api_token", c.Admin.APIToken, ""},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
}

func TestValidateAcceptsDefaultsWithSecret(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.Server.Listen = "4180"
	c.Server.PublicURL = "localhost:4180"
	c.Upstream.URL = "ftp://litellm"
	c.Upstream.ResponseHeaderTimeout = -1
	c.Upstream.DialTimeout = -1
	c.Upstream.GroupsMaxBytes = 10
	c.Upstream.Headers.Email = "X Forwarded Email"
	c.Upstream.Headers.Groups = "x_forwarded_user"
	c.Upstream.Headers.TeamID = "Authorization"
	c.Session.Secret = "short-secret"
	c.Session.Lifetime = Duration(time.Second)
	c.Session.CookieName = "bad name"
	c.Admin.APIToken = "tiny"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken config")
	}
	want := []string{
		`server.listen: must be host:port or :port (got "4180")`,
		`server.public_url: must be an absolute http(s) URL`,
		`upstream.url: must be an absolute http(s) URL`,
		`upstream.response_header_timeout: must be positive`,
		`upstream.dial_timeout: must be positive`,
		`upstream.groups_max_bytes: must be between 64 and 65536 (got 10)`,
		`upstream.headers.email: must be a header name`,
		`upstream.headers.groups: "x_forwarded_user" is the same header as upstream.headers.user`,
		`upstream.headers.team_id: "Authorization" cannot be used`,
		`session.secret: must be at least 32 bytes (got 12)`,
		`session.lifetime: must be at least 1m`,
		`session.cache_ttl: must not exceed session.lifetime`,
		`session.cookie_name: must be a non-empty cookie name`,
		`admin.api_token: must be at least 16 bytes when set (got 4)`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", n, len(want), msg)
	}
}

func TestValidatePublicURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://localhost:4180", true},
		{"https://gate.example.com", true},
		{"https://gate.example.com/", true},
		{"https://gate.example.com/prefix", false},
		{"https://gate.example.com?x=1", false},
		{"https://user:pw@gate.example.com", false},
		{"//gate.example.com", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c := validConfig()
			c.Server.PublicURL = tt.url
			err := c.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate(public_url=%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "server.public_url: ") {
				t.Errorf("error does not name its key: %v", err)
			}
		})
	}
}

func TestDurationYAML(t *testing.T) {
	var c Config
	src := "upstream:\n  response_header_timeout: 90s\nsession:\n  lifetime: 8h\n"
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if c.Upstream.ResponseHeaderTimeout.Std() != 90*time.Second || c.Session.Lifetime.Std() != 8*time.Hour {
		t.Errorf("decoded %v and %v", c.Upstream.ResponseHeaderTimeout, c.Session.Lifetime)
	}
	for _, bad := range []string{"session:\n  lifetime: soon\n", "session:\n  lifetime: [1]\n"} {
		if err := yaml.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	out, err := yaml.Marshal(struct {
		D Duration `yaml:"d"`
	}{Duration(10 * time.Minute)})
	if err != nil || string(out) != "d: 10m0s\n" {
		t.Errorf("marshal = %q, %v", out, err)
	}
}
