package provision

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/litellm"
)

func TestConfigEnabled(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name      string
		masterKey string
		provision *bool
		want      bool
	}{
		{"no key, unset", "", nil, false},
		{"key, unset", "sk-1", nil, true},
		{"key, off", "sk-1", &no, false},
		{"key, on", "sk-1", &yes, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			c.MasterKey, c.Provision = tc.masterKey, tc.provision
			if got := c.Enabled(); got != tc.want {
				t.Errorf("Enabled() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	yes := true
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // substrings; none: valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"url, key, wait", func(c *Config) { c.URL, c.MasterKey, c.WaitOnSignIn = "https://litellm:4000", "sk-1", true }, nil},
		{"everything wrong at once", func(c *Config) { c.URL, c.Provision, c.WaitTimeout = "litellm:4000", &yes, 0 }, []string{
			"litellm.url: must be an absolute http(s) URL", "litellm.master_key: required when litellm.provision is true",
			"litellm.wait_timeout: must be positive",
		}},
		{"wait without provisioning", func(c *Config) { c.WaitOnSignIn = true }, []string{"litellm.wait_on_sign_in: needs provisioning"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	w := &Worker{MinBackoff: time.Second, MaxBackoff: 5 * time.Minute, Jitter: func(d time.Duration) time.Duration { return d }}
	w.init()
	plain := errors.New("connection refused")
	tests := []struct {
		name     string
		attempts int
		err      error
		want     time.Duration
	}{
		{"first failure", 1, plain, time.Second},
		{"third failure", 3, plain, 4 * time.Second},
		{"capped", 12, plain, 5 * time.Minute},
		{"huge attempt count does not overflow", 1000, plain, 5 * time.Minute},
		{"zero attempts counts as the first", 0, plain, time.Second},
		{"wrapped transient error", 2, fmt.Errorf("x: %w", litellm.ErrTransient), 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := w.backoff(tc.attempts, tc.err); got != tc.want {
				t.Errorf("backoff(%d) = %s, want %s", tc.attempts, got, tc.want)
			}
		})
	}
	for range 1000 {
		if d := equalJitter(time.Minute); d < 30*time.Second || d > time.Minute {
			t.Fatalf("equalJitter(1m) = %s, want within [30s, 1m]", d)
		}
	}
}
