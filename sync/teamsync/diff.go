package teamsync

import (
	"cmp"
	"slices"
	"time"

	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
)

// Observed is what Microsoft Graph said, read before the transaction opens.
type Observed struct {
	// UserGroups are the signing-in user's groups (fresh at this sign-in).
	UserGroups []graph.Group
	// AppScoped is true when an Enterprise App service principal is
	// configured: then AppGroups is the full set of groups assigned to the
	// app, and only those groups are teams.
	AppScoped bool
	AppGroups []graph.Group
	// AppFetchedAt is when AppGroups was read from Graph; it may be up to
	// the cache TTL old. Names and assignment flags from that list only
	// overwrite a team changed before this instant, so a stale cached list
	// cannot undo a newer change another sign-in already applied.
	AppFetchedAt time.Time
	// Known are groups freshly read from Graph that say nothing about the
	// user (the background job's delta query): their names rename existing
	// teams, and with AppScoped they override the app list's names. They
	// never create a team.
	Known []graph.Group
	// Deleted are groups Graph reported deleted: they manage no team any
	// more, so an assigned team of theirs is unassigned.
	Deleted []string
}

// Current is the database state the diff is computed against, read inside
// the reconcile transaction.
type Current struct {
	// Teams holds every existing team whose id is among the user's groups,
	// the app's groups, the user's memberships or the assigned teams.
	Teams map[string]store.Team
	// AssignedIDs are all teams currently marked assigned (AppScoped only).
	AssignedIDs []string
	// Memberships are the user's memberships, any source.
	Memberships []store.Membership
}

// Plan is what a reconcile must write. Every list is sorted, so applying it
// takes row locks in a consistent order across concurrent reconciles.
type Plan struct {
	Create            []store.Team      // new teams, carrying the default params
	Rename            map[string]string // team id → new alias
	Assign            []string          // existing teams to mark assigned
	Unassign          []string          // teams whose group left the app
	AddMemberships    []string          // team ids the user joins (source entra)
	RemoveMemberships []string          // team ids the user leaves (source entra)
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return len(p.Create) == 0 && len(p.Rename) == 0 && len(p.Assign) == 0 &&
		len(p.Unassign) == 0 && len(p.AddMemberships) == 0 && len(p.RemoveMemberships) == 0
}

// Diff computes the writes that take the database from cur to what obs
// says. It is pure: same inputs, same plan; and applying the plan, then
// diffing again, yields an empty plan.
func Diff(obs Observed, cur Current, defaults store.TeamParams) Plan {
	// Names seen in the user's memberOf are fresh; names from the app list
	// may come from the cache. fresh[id] records which source a name came from.
	type source struct {
		name  string
		fresh bool
	}
	managed := map[string]source{}
	plan := Plan{Rename: map[string]string{}}
	if obs.AppScoped {
		for _, g := range obs.AppGroups {
			managed[g.ID] = source{name: g.DisplayName}
		}
	}
	deleted := make(map[string]bool, len(obs.Deleted))
	for _, id := range obs.Deleted {
		deleted[id] = true
		delete(managed, id)
	}
	for _, g := range obs.Known {
		if deleted[g.ID] {
			continue
		}
		if _, ok := managed[g.ID]; ok {
			managed[g.ID] = source{name: g.DisplayName, fresh: true}
		} else if t, ok := cur.Teams[g.ID]; ok && !obs.AppScoped && t.Alias != g.DisplayName {
			plan.Rename[g.ID] = g.DisplayName
		}
	}
	desired := map[string]bool{}
	for _, g := range obs.UserGroups {
		if deleted[g.ID] {
			continue
		}
		if obs.AppScoped {
			if _, ok := managed[g.ID]; !ok {
				continue // the user's group is not assigned to the app
			}
		}
		managed[g.ID] = source{name: g.DisplayName, fresh: true}
		desired[g.ID] = true
	}

	for id, src := range managed {
		t, exists := cur.Teams[id]
		if !exists {
			plan.Create = append(plan.Create, store.Team{
				ID:             id,
				Alias:          src.name,
				MaxBudget:      defaults.MaxBudget,
				BudgetDuration: defaults.BudgetDuration,
				Models:         defaults.Models,
				TPMLimit:       defaults.TPMLimit,
				RPMLimit:       defaults.RPMLimit,
				Assigned:       true,
			})
			continue
		}
		trusted := src.fresh || obs.AppFetchedAt.After(t.UpdatedAt)
		if t.Alias != src.name && trusted {
			plan.Rename[id] = src.name
		}
		if !t.Assigned && trusted {
			plan.Assign = append(plan.Assign, id)
		}
	}
	if !obs.AppScoped {
		for _, id := range obs.Deleted {
			if t, ok := cur.Teams[id]; ok && t.Assigned {
				plan.Unassign = append(plan.Unassign, id)
			}
		}
	}
	if obs.AppScoped {
		for _, id := range cur.AssignedIDs {
			if _, ok := managed[id]; ok {
				continue
			}
			if t, ok := cur.Teams[id]; ok && !obs.AppFetchedAt.After(t.UpdatedAt) {
				continue // assigned after our (cached) list was read
			}
			plan.Unassign = append(plan.Unassign, id)
		}
	}

	member := map[string]store.Membership{}
	for _, m := range cur.Memberships {
		member[m.TeamID] = m
	}
	for id := range desired {
		if _, ok := member[id]; !ok {
			plan.AddMemberships = append(plan.AddMemberships, id)
		}
	}
	for id, m := range member {
		if m.Source == store.SourceEntra && !desired[id] {
			plan.RemoveMemberships = append(plan.RemoveMemberships, id)
		}
	}

	slices.SortFunc(plan.Create, func(a, b store.Team) int { return cmp.Compare(a.ID, b.ID) })
	slices.Sort(plan.Assign)
	slices.Sort(plan.Unassign)
	slices.Sort(plan.AddMemberships)
	slices.Sort(plan.RemoveMemberships)
	return plan
}

// referencedTeams lists every team id the diff may need to look at.
func referencedTeams(obs Observed, memberships []store.Membership, assigned []string) []string {
	seen := map[string]bool{}
	var ids []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, g := range obs.UserGroups {
		add(g.ID)
	}
	for _, g := range obs.AppGroups {
		add(g.ID)
	}
	for _, g := range obs.Known {
		add(g.ID)
	}
	for _, id := range obs.Deleted {
		add(id)
	}
	for _, m := range memberships {
		add(m.TeamID)
	}
	for _, id := range assigned {
		add(id)
	}
	slices.Sort(ids)
	return ids
}
