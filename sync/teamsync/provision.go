package teamsync

import (
	"context"
	"fmt"

	"github.com/teamgate/teamgate/sync/litellm"
	"github.com/teamgate/teamgate/sync/store"
)

// Provisioning makes a reconcile mirror what it changed into LiteLLM: the
// management-API operations go into the outbox in the reconcile's own
// transaction, so they are committed exactly when the changes are, and a
// worker (sync/provision) delivers them.
type Provisioning struct {
	Enabled bool
	// BlockUnassignedTeams blocks a team in LiteLLM when its group is no
	// longer assigned to the app. A team assigned again is always
	// unblocked (unblocking a team that is not blocked is harmless, and
	// the option may have been on when it was unassigned).
	BlockUnassignedTeams bool
}

// WithProvisioning enables LiteLLM provisioning (default: off).
func WithProvisioning(p Provisioning) Option { return func(r *Reconciler) { r.prov = p } }

// provisionOps lists the LiteLLM operations for what a reconcile actually
// changed (c, which under concurrent sign-ins may be less than the plan),
// in delivery order: the user, then teams (created, renamed, unblocked),
// then memberships (added, removed), then blocks last, so that a membership
// change still reaches a team that is being blocked. Teams' params and new
// aliases come from the plan.
func provisionOps(p Provisioning, u store.User, userCreated bool, plan Plan, c Changes) []store.OutboxOp {
	var ops []litellm.Op
	if userCreated {
		ops = append(ops, litellm.UserNew(u.ID, u.Email, u.ID, litellm.UserParams{
			UserRole: u.UserRole, MaxBudget: u.MaxBudget, BudgetDuration: u.BudgetDuration, Models: u.Models,
		}))
	}
	created := make(map[string]store.Team, len(plan.Create))
	for _, t := range plan.Create {
		created[t.ID] = t
	}
	for _, id := range c.TeamsCreated {
		t := created[id]
		ops = append(ops, litellm.TeamNew(id, t.Alias, litellm.TeamParams{
			MaxBudget: t.MaxBudget, BudgetDuration: t.BudgetDuration, Models: t.Models, TPMLimit: t.TPMLimit, RPMLimit: t.RPMLimit,
		}))
	}
	for _, id := range c.TeamsRenamed {
		ops = append(ops, litellm.TeamUpdateAlias(id, plan.Rename[id]))
	}
	for _, id := range c.TeamsAssigned {
		ops = append(ops, litellm.TeamUnblock(id))
	}
	for _, id := range c.MembershipsAdded {
		ops = append(ops, litellm.MemberAdd(id, u.ID))
	}
	for _, id := range c.MembershipsRemoved {
		ops = append(ops, litellm.MemberDelete(id, u.ID))
	}
	if p.BlockUnassignedTeams {
		for _, id := range c.TeamsUnassigned {
			ops = append(ops, litellm.TeamBlock(id))
		}
	}
	out := make([]store.OutboxOp, len(ops))
	for i, op := range ops {
		out[i] = store.OutboxOp{Kind: op.Kind, TeamID: op.TeamID, UserID: op.UserID, Body: op.Body}
	}
	return out
}

// enqueue writes the operations with one statement and returns their ids.
func (r *Reconciler) enqueue(ctx context.Context, tx store.Tx, res Result, plan Plan) ([]int64, error) {
	if !r.prov.Enabled {
		return nil, nil
	}
	ops := provisionOps(r.prov, res.User, res.UserCreated, plan, res.Changes)
	if len(ops) == 0 {
		return nil, nil
	}
	ids, err := tx.EnqueueOutbox(ctx, ops, r.now())
	if err != nil {
		return nil, fmt.Errorf("enqueue litellm operations: %w", err)
	}
	return ids, nil
}
