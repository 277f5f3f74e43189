// Package provision delivers the LiteLLM operations a reconcile left in the
// outbox (see store/outbox.go) to LiteLLM's management API: in order per
// team and per user, with retries and backoff, parking what LiteLLM refuses
// for good. It is safe to run one Worker per replica on one PostgreSQL
// database; on SQLite run one.
package provision

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config is the `litellm` section: where LiteLLM's management API is and
// whether teamgate provisions teams, users and memberships into it.
type Config struct {
	// URL of the LiteLLM proxy; empty means upstream.url.
	URL string `yaml:"url"`
	// MasterKey authorises the management API calls.
	MasterKey string `yaml:"master_key"`
	// Provision turns provisioning on or off; unset (nil) means on exactly
	// when a master key is set.
	Provision *bool `yaml:"provision"`
	// BlockUnassignedTeams blocks a team in LiteLLM when its group is no
	// longer assigned to the Enterprise App (and unblocks it when it is
	// assigned again).
	BlockUnassignedTeams bool `yaml:"block_unassigned_teams"`
	// WaitOnSignIn makes sign-in wait (up to WaitTimeout) until the user's
	// operations reached LiteLLM, so the first request after sign-in finds
	// the user and teams there. On timeout sign-in goes on regardless.
	WaitOnSignIn bool          `yaml:"wait_on_sign_in"`
	WaitTimeout  time.Duration `yaml:"wait_timeout"`
}

// Defaults returns the section as config.yaml documents it.
func Defaults() Config {
	return Config{BlockUnassignedTeams: true, WaitTimeout: 10 * time.Second}
}

// Enabled reports whether teamgate provisions LiteLLM.
func (c Config) Enabled() bool {
	if c.Provision != nil {
		return *c.Provision
	}
	return c.MasterKey != ""
}

// Validate reports every problem at once, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("litellm.url: must be an absolute http(s) URL (or empty for upstream.url), got %q", c.URL))
		}
	}
	if c.Provision != nil && *c.Provision && c.MasterKey == "" {
		errs = append(errs, errors.New(`litellm.master_key: required when litellm.provision is true (e.g. "${LITELLM_MASTER_KEY}")`))
	}
	if c.WaitTimeout <= 0 {
		errs = append(errs, fmt.Errorf("litellm.wait_timeout: must be positive, got %s", c.WaitTimeout))
	}
	if c.WaitOnSignIn && !c.Enabled() {
		errs = append(errs, errors.New("litellm.wait_on_sign_in: needs provisioning (set litellm.master_key)"))
	}
	return errors.Join(errs...)
}
