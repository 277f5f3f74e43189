package teamsync

import (
	"context"
	"fmt"

	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
)

// A user's Entra groups are only known at sign-in, so the reconcile records
// whether the user is in one of the administrators groups (admin.group_ids)
// for the gateway to read with the session. The groups need not be assigned
// to the app: they are checked against all of the user's groups (direct, or
// transitive with entra.nested_groups), not against the teams.

// WithAdminGroups names the Entra groups whose members administer teamgate.
// Without it the reconcile does not touch the flag (the gateway ignores it
// when admin.group_ids is empty).
func WithAdminGroups(ids ...string) Option {
	return func(r *Reconciler) {
		r.adminGroups = nil
		for _, id := range ids {
			if id == "" {
				continue
			}
			if r.adminGroups == nil {
				r.adminGroups = map[string]bool{}
			}
			r.adminGroups[id] = true
		}
	}
}

// InAdminGroup reports whether any of groups is an administrators group.
func InAdminGroup(groups []graph.Group, adminGroups map[string]bool) bool {
	for _, g := range groups {
		if adminGroups[g.ID] {
			return true
		}
	}
	return false
}

// recordAdminGroup writes the flag: one statement, and none when no
// administrators group is configured.
func (r *Reconciler) recordAdminGroup(ctx context.Context, tx store.Tx, userID string, groups []graph.Group) error {
	if len(r.adminGroups) == 0 {
		return nil
	}
	if err := tx.SetInAdminGroup(ctx, userID, InAdminGroup(groups, r.adminGroups)); err != nil {
		return fmt.Errorf("record admin group: %w", err)
	}
	return nil
}
