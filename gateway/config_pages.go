package gateway

import (
	"fmt"
	"strings"
)

// The configuration of teamgate's own pages: server.sign_in_page and
// admin.group_ids (declared with their sections in config.go).

// maxAdminGroups bounds admin.group_ids; the reconcile checks every sign-in
// against it, and a real deployment names a handful.
const maxAdminGroups = 100

func (c *Config) applyPagesDefaults() {
	if c.Admin.GroupIDs == nil {
		// [] rather than null, so that the defaults read like config.yaml.
		c.Admin.GroupIDs = []string{}
	}
}

func (c Config) validatePages() []error {
	var errs []error
	if n := len(c.Admin.GroupIDs); n > maxAdminGroups {
		errs = append(errs, fmt.Errorf("admin.group_ids: at most %d groups (got %d)", maxAdminGroups, n))
	}
	seen := map[string]bool{}
	for i, id := range c.Admin.GroupIDs {
		key := fmt.Sprintf("admin.group_ids[%d]", i)
		switch {
		case strings.TrimSpace(id) == "":
			errs = append(errs, fmt.Errorf("%s: must be an Entra group object id, not empty", key))
		case id != strings.TrimSpace(id) || strings.ContainsAny(id, ", \t\r\n/"):
			errs = append(errs, fmt.Errorf("%s: %q is not a group object id (no spaces, commas or slashes)", key, id))
		case seen[strings.ToLower(id)]:
			errs = append(errs, fmt.Errorf("%s: %q is listed twice", key, id))
		}
		seen[strings.ToLower(id)] = true
	}
	return errs
}

// isAdmin reports whether the principal may open the admin pages: LiteLLM's
// own proxy_admin role, or membership of an administrators group at the last
// sign-in. The group flag counts only while admin.group_ids names groups, so
// emptying the list revokes it at once.
func (g *Gateway) isAdmin(p *Principal) bool {
	return p.Role == "proxy_admin" || (len(g.cfg.Admin.GroupIDs) > 0 && p.InAdminGroup)
}
