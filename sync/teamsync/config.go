package teamsync

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/teamgate/teamgate/sync/store"
)

// Config is the `litellm_settings` section: the params applied to teams and
// users when teamgate creates them (never to existing ones), as in LiteLLM's
// own default_team_params and default_internal_user_params.
type Config struct {
	DefaultTeamParams         TeamParams `yaml:"default_team_params"`
	DefaultInternalUserParams UserParams `yaml:"default_internal_user_params"`
}

// TeamParams mirrors LiteLLM's default_team_params.
type TeamParams struct {
	MaxBudget      *float64 `yaml:"max_budget"`
	BudgetDuration string   `yaml:"budget_duration"`
	Models         []string `yaml:"models"`
	TPMLimit       *int64   `yaml:"tpm_limit"`
	RPMLimit       *int64   `yaml:"rpm_limit"`
}

// UserParams mirrors LiteLLM's default_internal_user_params.
type UserParams struct {
	UserRole       string   `yaml:"user_role"`
	MaxBudget      *float64 `yaml:"max_budget"`
	BudgetDuration string   `yaml:"budget_duration"`
	Models         []string `yaml:"models"`
}

// User roles LiteLLM knows.
var userRoles = map[string]bool{
	"internal_user":        true,
	"internal_user_viewer": true,
	"proxy_admin":          true,
	"proxy_admin_viewer":   true,
}

// LiteLLM budget durations: a count and a unit (seconds, minutes, hours,
// days, months), e.g. "30d" or "1mo".
var durationRE = regexp.MustCompile(`^[1-9][0-9]*(s|m|h|d|mo)$`)

// Defaults returns the section as config.yaml documents it: new teams get a
// budget of 100 per 30 days and gpt-3.5-turbo, new users are internal users.
// Set a key to null (e.g. `max_budget: null`) to leave it unset.
func Defaults() Config {
	budget := 100.0
	c := Config{DefaultTeamParams: TeamParams{MaxBudget: &budget, BudgetDuration: "30d", Models: []string{"gpt-3.5-turbo"}}}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills what LiteLLM would assume when a key is left out.
func (c *Config) ApplyDefaults() {
	if c.DefaultInternalUserParams.UserRole == "" {
		c.DefaultInternalUserParams.UserRole = "internal_user"
	}
}

// Validate reports every problem at once, each naming its key.
func (c Config) Validate() error {
	const tp = "litellm_settings.default_team_params."
	const up = "litellm_settings.default_internal_user_params."
	var errs []error
	t, u := c.DefaultTeamParams, c.DefaultInternalUserParams
	if t.MaxBudget != nil && *t.MaxBudget < 0 {
		errs = append(errs, fmt.Errorf("%smax_budget: must not be negative (got %v)", tp, *t.MaxBudget))
	}
	if t.BudgetDuration != "" && !durationRE.MatchString(t.BudgetDuration) {
		errs = append(errs, fmt.Errorf("%sbudget_duration: %q is not a LiteLLM duration like 30s, 30m, 12h, 30d or 1mo", tp, t.BudgetDuration))
	}
	if t.TPMLimit != nil && *t.TPMLimit < 0 {
		errs = append(errs, fmt.Errorf("%stpm_limit: must not be negative (got %d)", tp, *t.TPMLimit))
	}
	if t.RPMLimit != nil && *t.RPMLimit < 0 {
		errs = append(errs, fmt.Errorf("%srpm_limit: must not be negative (got %d)", tp, *t.RPMLimit))
	}
	errs = append(errs, validateModels(tp+"models", t.Models)...)
	if !userRoles[u.UserRole] {
		errs = append(errs, fmt.Errorf("%suser_role: %q is not one of internal_user, internal_user_viewer, proxy_admin, proxy_admin_viewer", up, u.UserRole))
	}
	if u.MaxBudget != nil && *u.MaxBudget < 0 {
		errs = append(errs, fmt.Errorf("%smax_budget: must not be negative (got %v)", up, *u.MaxBudget))
	}
	if u.BudgetDuration != "" && !durationRE.MatchString(u.BudgetDuration) {
		errs = append(errs, fmt.Errorf("%sbudget_duration: %q is not a LiteLLM duration like 30s, 30m, 12h, 30d or 1mo", up, u.BudgetDuration))
	}
	errs = append(errs, validateModels(up+"models", u.Models)...)
	return errors.Join(errs...)
}

func validateModels(key string, models []string) []error {
	var errs []error
	for i, m := range models {
		if m == "" {
			errs = append(errs, fmt.Errorf("%s[%d]: must not be empty", key, i))
		}
	}
	return errs
}

func (p TeamParams) storeParams() store.TeamParams {
	return store.TeamParams{
		MaxBudget:      p.MaxBudget,
		BudgetDuration: p.BudgetDuration,
		Models:         p.Models,
		TPMLimit:       p.TPMLimit,
		RPMLimit:       p.RPMLimit,
	}
}

func (p UserParams) storeParams() store.UserParams {
	return store.UserParams{
		UserRole:       p.UserRole,
		MaxBudget:      p.MaxBudget,
		BudgetDuration: p.BudgetDuration,
		Models:         p.Models,
	}
}
