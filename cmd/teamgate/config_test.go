package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mapEnv(m map[string]string) env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const validYAML = `
server:
  public_url: "https://llm.example.com"
entra:
  tenant_id: "tid"
  client_id: "cid"
  client_secret: "${SECRET}"
session:
  secret: "${SESSION}"
`

var validEnv = mapEnv(map[string]string{"SECRET": `s3cr"et: {x}`, "SESSION": strings.Repeat("k", 40)})

func TestParseConfigValidAndDefaults(t *testing.T) {
	cfg, err := parseConfig("test.yaml", []byte(validYAML), validEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Entra.ClientSecret != `s3cr"et: {x}` {
		t.Errorf("client_secret = %q: ${VAR} must expand verbatim, YAML syntax in it included", cfg.Entra.ClientSecret)
	}
	if cfg.Server.Listen != ":4180" || cfg.Upstream.URL != "http://localhost:4000" || cfg.Database.URL != "sqlite:teamgate.db" ||
		cfg.Entra.AuthorityHost != "https://login.microsoftonline.com" || cfg.Entra.AppGroupsTTL != 5*time.Minute ||
		cfg.LiteLLMSettings.DefaultInternalUserParams.UserRole != "internal_user" || *cfg.LiteLLMSettings.DefaultTeamParams.MaxBudget != 100 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestParseConfigReportsEveryProblemWithItsKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
		not  []string // must not appear: validation repeating a decode error
	}{{
		name: "unknown keys at every level",
		yaml: validYAML + "bogus: 1\nlog:\n  levle: debug\nupstream:\n  headers:\n    usr: X-User\n",
		want: []string{"bogus: unknown key (line", "log.levle: unknown key", "upstream.headers.usr: unknown key"},
	}, {
		name: "wrong types name the key",
		yaml: validYAML + "upstream:\n  groups_max_bytes: lots\nentra_extra: 1\n",
		want: []string{"upstream.groups_max_bytes:", "entra_extra: unknown key"},
	}, {
		name: "unknown keys, wrong types and invalid values together",
		yaml: "entra:\n  tenant_idd: x\n  client_id: c\n  client_secret: s\n  graph_max_attempts: many\nsession:\n  secret: short\nlog:\n  format: xml\n",
		want: []string{
			"entra.tenant_idd: unknown key", "entra.tenant_id: required", "entra.graph_max_attempts:",
			"session.secret", "log.format",
		},
		not: []string{"entra.graph_max_attempts: must be between"},
	}, {
		name: "invalid values, all at once",
		yaml: `
server:
  public_url: "ftp://x"
entra:
  tenant_id: ""
  client_id: ""
  client_secret: "${UNSET_SECRET}"
  graph_max_attempts: 0
database:
  url: "mysql://x"
session:
  secret: "short"
litellm_settings:
  default_team_params:
    budget_duration: "30 days"
  default_internal_user_params:
    user_role: admin
log:
  format: xml
`,
		want: []string{
			"server.public_url", "entra.tenant_id: required", "entra.client_id: required", "entra.client_secret: required",
			"entra.graph_max_attempts", "database.url", "session.secret", "litellm_settings.default_team_params.budget_duration",
			"litellm_settings.default_internal_user_params.user_role", "log.format",
			"environment variables are referenced but not set: UNSET_SECRET",
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("test.yaml", []byte(tc.yaml), validEnv)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error has %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestParseConfigNeverEchoesSecrets(t *testing.T) {
	secret := "very-secret-session-value"
	_, err := parseConfig("t.yaml", []byte("session:\n  secret: \"${S}\"\n"), mapEnv(map[string]string{"S": secret}))
	if err == nil {
		t.Fatal("want an error (entra keys missing, secret too short)")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error message contains the secret: %v", err)
	}
}

// The config.yaml shipped in the repository must load (with its secrets set)
// and must document exactly the defaults the code uses.
func TestRepositoryConfigYAMLMatchesDefaults(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e := mapEnv(map[string]string{"TEAMGATE_CLIENT_SECRET": "x", "TEAMGATE_SESSION_SECRET": strings.Repeat("s", 32)})
	cfg, err := parseConfig("config.yaml", raw, e)
	if err != nil && !strings.Contains(err.Error(), "entra.tenant_id: required") {
		t.Fatalf("config.yaml: %v", err)
	}
	def := defaultConfig()
	def.Entra.ClientSecret, def.Session.Secret = cfg.Entra.ClientSecret, cfg.Session.Secret
	if got, want := dumpConfig(t, cfg), dumpConfig(t, def); got != want {
		t.Errorf("config.yaml differs from the code's defaults:\nfile: %s\ncode: %s", got, want)
	}
}

func dumpConfig(t *testing.T, c Config) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
