package graph

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := New(Config{TenantID: "t", ClientID: "c", ClientSecret: "s", GraphURL: "https://graph.microsoft.us/"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.cfg
	if got.AuthorityHost != DefaultAuthorityHost || got.GraphURL != "https://graph.microsoft.us" ||
		got.AppGroupsTTL != 5*time.Minute || got.MaxAttempts != 4 || got.MaxRetryTime != 20*time.Second ||
		got.RequestTimeout != 30*time.Second {
		t.Errorf("defaults not applied: %v", got)
	}
	if c.tokenURL != "https://login.microsoftonline.com/t/oauth2/v2.0/token" {
		t.Errorf("token URL = %s", c.tokenURL)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // every problem is reported
	}{
		{name: "empty", cfg: Config{}, want: []string{"tenant_id", "client_id", "client_secret"}},
		{name: "bad values", cfg: Config{TenantID: "t", ClientID: "c", ClientSecret: "s",
			AuthorityHost: "login.microsoftonline.com", GraphURL: "https://graph.microsoft.com/?x=1",
			MaxAttempts: -1, MaxRetryTime: -time.Second, AppGroupsTTL: -time.Second, RequestTimeout: -time.Second},
			want: []string{"authority_host", "graph_url", "max_attempts", "max_retry_time", "app_groups_ttl", "request_timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, key := range tt.want {
				if !strings.Contains(err.Error(), key) {
					t.Errorf("error %q does not name %s", err, key)
				}
			}
		})
	}
}

func TestConfigHidesSecret(t *testing.T) {
	cfg := Config{TenantID: "t", ClientID: "c", ClientSecret: testSecret}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "entra", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", &cfg), logs.String()} {
		if strings.Contains(s, testSecret) {
			t.Errorf("secret printed: %s", s)
		}
	}
}
