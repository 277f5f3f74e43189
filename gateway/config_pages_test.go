package gateway

import (
	"fmt"
	"strings"
	"testing"
)

func TestPagesConfig(t *testing.T) {
	many := make([]string, maxAdminGroups+1)
	for i := range many {
		many[i] = fmt.Sprintf("g%d", i)
	}
	tests := []struct {
		name    string
		groups  []string
		wantErr string // "" = valid
	}{
		{"none", nil, ""},
		{"object ids", []string{"5b1d0c2e-0000-4000-8000-000000000001", "admins"}, ""},
		{"empty", []string{"ok", ""}, "admin.group_ids[1]: must be an Entra group object id"},
		{"spaces", []string{" padded"}, "admin.group_ids[0]: \" padded\" is not a group object id"},
		{"a comma-joined list", []string{"a,b"}, "admin.group_ids[0]"},
		{"twice, any case", []string{"ABC", "abc"}, "admin.group_ids[1]: \"abc\" is listed twice"},
		{"too many", many, "admin.group_ids: at most 100 groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Admin.GroupIDs = tt.groups
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}

	var c Config
	c.ApplyDefaults()
	if c.Admin.GroupIDs == nil || len(c.Admin.GroupIDs) != 0 || c.Server.SignInPage {
		t.Errorf("defaults: group_ids %#v, sign_in_page %v; want [] and false", c.Admin.GroupIDs, c.Server.SignInPage)
	}
}

func TestIsAdmin(t *testing.T) {
	tests := []struct {
		name     string
		p        Principal
		groupIDs []string
		want     bool
	}{
		{"internal user", Principal{Role: "internal_user"}, []string{"g"}, false},
		{"proxy admin", Principal{Role: "proxy_admin"}, nil, true},
		{"in an admin group", Principal{Role: "internal_user", InAdminGroup: true}, []string{"g"}, true},
		{"flag without configured groups", Principal{InAdminGroup: true}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &Gateway{cfg: Config{Admin: AdminConfig{GroupIDs: tt.groupIDs}}}
			if got := g.isAdmin(&tt.p); got != tt.want {
				t.Errorf("isAdmin = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDefaultTeam(t *testing.T) {
	teams := []TeamRef{{ID: "a", Alias: "Alpha"}, {ID: "b", Alias: "Beta"}}
	tests := []struct {
		name string
		p    Principal
		want string
	}{
		{"no teams", Principal{DefaultTeamID: "a"}, ""},
		{"no choice: first by alias", Principal{Teams: teams}, "a"},
		{"the choice", Principal{Teams: teams, DefaultTeamID: "b"}, "b"},
		{"a choice no longer among the teams", Principal{Teams: teams, DefaultTeamID: "gone"}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultTeam(&tt.p); got != tt.want {
				t.Errorf("defaultTeam = %q, want %q", got, tt.want)
			}
		})
	}
}
