package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// ErrNoServicePrincipal is returned by AppGroups and AppAssignments when no
// service principal id is configured.
var ErrNoServicePrincipal = errors.New("microsoft graph: no service principal id configured")

// AppAssignments is who is assigned to the Enterprise App (any app role).
type AppAssignments struct {
	Groups  []Group  // principalType Group, as AppGroups
	UserIDs []string // principalType User (assigned directly), sorted
	// AssignmentRequired is the service principal's
	// appRoleAssignmentRequired: when true, users who are neither assigned
	// nor a direct member of an assigned group cannot sign in.
	AssignmentRequired bool
	// FetchedAt is when the fetch from Graph started, so "changed before
	// this instant" stays conservative.
	FetchedAt time.Time
}

func (a AppAssignments) clone() AppAssignments {
	a.Groups, a.UserIDs = slices.Clone(a.Groups), slices.Clone(a.UserIDs)
	return a
}

// AppGroups returns the groups assigned to the Enterprise App (any app
// role), cached for Config.AppGroupsTTL. Needs Application.Read.All.
func (c *Client) AppGroups(ctx context.Context) ([]Group, error) {
	groups, _, err := c.AppGroupsAt(ctx)
	return groups, err
}

// AppGroupsAt is AppGroups plus when the list was fetched from Graph. It
// shares AppAssignments' cache.
func (c *Client) AppGroupsAt(ctx context.Context) ([]Group, time.Time, error) {
	a, err := c.AppAssignments(ctx, false)
	if err != nil {
		return nil, time.Time{}, err
	}
	return a.Groups, a.FetchedAt, nil
}

// AppAssignments returns the app's assignments, cached for
// Config.AppGroupsTTL. Concurrent callers on a cold cache share one fetch;
// failures are not cached. fresh bypasses the cache and refreshes it (the
// background reconciliation asks once a run). Needs Application.Read.All.
func (c *Client) AppAssignments(ctx context.Context, fresh bool) (AppAssignments, error) {
	if !c.HasServicePrincipal() {
		return AppAssignments{}, ErrNoServicePrincipal
	}
	if a, ok := c.cachedAppAssignments(); ok && !fresh {
		return a, nil
	}
	// A fresh fetch gets its own flight: joining a cache-reading one could
	// hand back the very entry it means to replace.
	key := "appAssignments"
	if fresh {
		key = "appAssignmentsFresh"
	}
	v, err := c.shared(ctx, key, func(ctx context.Context) (any, error) {
		// A caller that missed the cache just as a fetch finished lands
		// here: look again rather than fetch twice.
		if a, ok := c.cachedAppAssignments(); ok && !fresh {
			return a, nil
		}
		at := c.now()
		a, err := c.fetchAppAssignments(ctx)
		if err != nil {
			return nil, err
		}
		a.FetchedAt = at
		c.storeAppAssignments(a)
		return a, nil
	})
	if err != nil {
		return AppAssignments{}, err
	}
	return v.(AppAssignments).clone(), nil
}

// cachedAppAssignments returns a copy, so callers cannot change the cache.
func (c *Client) cachedAppAssignments() (AppAssignments, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.appValid && c.now().Before(c.app.FetchedAt.Add(c.cfg.AppGroupsTTL)) {
		return c.app.clone(), true
	}
	return AppAssignments{}, false
}

// storeAppAssignments caches a, unless a fetch that started later already
// stored its answer.
func (c *Client) storeAppAssignments(a AppAssignments) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.appValid || !a.FetchedAt.Before(c.app.FetchedAt) {
		c.app, c.appValid = a.clone(), true
	}
}

// fetchAppAssignments reads appRoleAssignedTo (all pages), then the service
// principal's appRoleAssignmentRequired.
func (c *Client) fetchAppAssignments(ctx context.Context) (AppAssignments, error) {
	spPath := "/v1.0/servicePrincipals/" + url.PathEscape(c.cfg.ServicePrincipalID)
	path := spPath + "/appRoleAssignedTo"
	var groups groupSet
	users := map[string]bool{}
	err := c.eachPage(ctx, "appRoleAssignedTo", PermApplicationReadAll, c.graphURL(path, "$top=999"),
		func(p page) error {
			for _, it := range p.Items {
				switch it.PrincipalType {
				case "Group", "User":
				default:
					continue // service principals assigned directly
				}
				if it.PrincipalID == "" {
					return fmt.Errorf("microsoft graph: GET %s: assignment without a principalId", path)
				}
				if it.PrincipalType == "User" {
					users[it.PrincipalID] = true
					continue
				}
				if it.PrincipalDisplayName == nil {
					return &PermissionError{Permission: PermApplicationReadAll, Endpoint: path, Status: 200}
				}
				groups.add(Group{ID: it.PrincipalID, DisplayName: *it.PrincipalDisplayName})
			}
			return nil
		})
	if err != nil {
		return AppAssignments{}, err
	}
	body, err := c.get(ctx, "servicePrincipal", PermApplicationReadAll, c.graphURL(spPath, "$select=appRoleAssignmentRequired"))
	if err != nil {
		return AppAssignments{}, err
	}
	required, err := parseAssignmentRequired(body)
	if err != nil {
		return AppAssignments{}, fmt.Errorf("microsoft graph: GET %s: %w", spPath, err)
	}
	a := AppAssignments{Groups: groups.groups, AssignmentRequired: required}
	for id := range users {
		a.UserIDs = append(a.UserIDs, id)
	}
	slices.Sort(a.UserIDs)
	return a, nil
}

// parseAssignmentRequired reads appRoleAssignmentRequired from a service
// principal, matching the key exactly; a missing or non-boolean value is an
// error rather than a guess either way.
func parseAssignmentRequired(body []byte) (bool, error) {
	obj, err := jsonObject(body)
	if err != nil {
		return false, fmt.Errorf("unreadable service principal: %w", err)
	}
	raw, ok := obj["appRoleAssignmentRequired"]
	if !ok {
		return false, errors.New("service principal without appRoleAssignmentRequired")
	}
	var required *bool
	if err := json.Unmarshal(raw, &required); err != nil || required == nil {
		return false, errors.New("service principal: appRoleAssignmentRequired is not a boolean")
	}
	return *required, nil
}
