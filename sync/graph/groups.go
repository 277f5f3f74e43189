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

// ErrNoServicePrincipal is returned by AppGroups when no service principal
// id is configured.
var ErrNoServicePrincipal = errors.New("microsoft graph: no service principal id configured")

// UserProfile is the part of a Graph user that teamgate stores. Mail may be
// empty (accounts without a mailbox).
type UserProfile struct {
	ID                string
	DisplayName       string
	Mail              string
	UserPrincipalName string
}

// UserGroups returns the groups the user is a member of: direct memberships,
// or nested ones with Config.NestedGroups. Directory roles and
// administrative units are dropped. Needs GroupMember.Read.All.
func (c *Client) UserGroups(ctx context.Context, userID string) ([]Group, error) {
	seg, err := userSegment(userID)
	if err != nil {
		return nil, err
	}
	rel := "memberOf"
	if c.cfg.NestedGroups {
		rel = "transitiveMemberOf"
	}
	path := "/v1.0/users/" + seg + "/" + rel
	var set groupSet
	err = c.eachPage(ctx, rel, PermGroupMemberReadAll, c.graphURL(path, "$select=id,displayName&$top=999"),
		func(p page) error {
			for _, it := range p.Items {
				if it.Type != odataGroup {
					continue
				}
				if it.ID == "" {
					return fmt.Errorf("microsoft graph: GET %s: group without an id", path)
				}
				if it.DisplayName == nil {
					// Limited information: Graph hides names without the
					// permission; never turn that into a team called "null".
					return &PermissionError{Permission: PermGroupMemberReadAll, Endpoint: path, Status: 200}
				}
				set.add(Group{ID: it.ID, DisplayName: *it.DisplayName})
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return set.groups, nil
}

// User returns the user's profile. Needs User.Read.All.
func (c *Client) User(ctx context.Context, userID string) (UserProfile, error) {
	seg, err := userSegment(userID)
	if err != nil {
		return UserProfile{}, err
	}
	path := "/v1.0/users/" + seg
	body, err := c.get(ctx, "user", PermUserReadAll, c.graphURL(path, "$select=id,displayName,mail,userPrincipalName"))
	if err != nil {
		return UserProfile{}, err
	}
	var u struct {
		ID                string `json:"id"`
		DisplayName       string `json:"displayName"`
		Mail              string `json:"mail"`
		UserPrincipalName string `json:"userPrincipalName"`
	}
	if err := json.Unmarshal(body, &u); err != nil || u.ID == "" {
		return UserProfile{}, fmt.Errorf("microsoft graph: GET %s: unreadable user", path)
	}
	return UserProfile(u), nil
}

// AppGroups returns the groups assigned to the Enterprise App (any app
// role), cached for Config.AppGroupsTTL. Needs Application.Read.All.
func (c *Client) AppGroups(ctx context.Context) ([]Group, error) {
	groups, _, err := c.AppGroupsAt(ctx)
	return groups, err
}

// AppGroupsAt is AppGroups plus when the list was fetched from Graph (the
// start of the fetch, so "changed before this instant" stays conservative).
// Concurrent callers on a cold cache share one fetch; failures are not
// cached.
func (c *Client) AppGroupsAt(ctx context.Context) ([]Group, time.Time, error) {
	if !c.HasServicePrincipal() {
		return nil, time.Time{}, ErrNoServicePrincipal
	}
	if groups, at, ok := c.cachedAppGroups(); ok {
		return groups, at, nil
	}
	v, err := c.shared(ctx, "appGroups", func(ctx context.Context) (any, error) {
		// A caller that missed the cache just as a fetch finished lands
		// here: look again rather than fetch twice.
		if groups, at, ok := c.cachedAppGroups(); ok {
			return cachedApp{groups, at}, nil
		}
		at := c.now()
		groups, err := c.fetchAppGroups(ctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.app, c.appAt, c.appValid = groups, at, true
		c.mu.Unlock()
		return cachedApp{groups, at}, nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	r := v.(cachedApp)
	return slices.Clone(r.groups), r.at, nil
}

type cachedApp struct {
	groups []Group
	at     time.Time
}

// cachedAppGroups returns a copy, so callers cannot change the cache.
func (c *Client) cachedAppGroups() ([]Group, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.appValid && c.now().Before(c.appAt.Add(c.cfg.AppGroupsTTL)) {
		return slices.Clone(c.app), c.appAt, true
	}
	return nil, time.Time{}, false
}

func (c *Client) fetchAppGroups(ctx context.Context) ([]Group, error) {
	path := "/v1.0/servicePrincipals/" + url.PathEscape(c.cfg.ServicePrincipalID) + "/appRoleAssignedTo"
	var set groupSet
	err := c.eachPage(ctx, "appRoleAssignedTo", PermApplicationReadAll, c.graphURL(path, "$top=999"),
		func(p page) error {
			for _, it := range p.Items {
				if it.PrincipalType != "Group" {
					continue // users and service principals assigned directly
				}
				if it.PrincipalID == "" {
					return fmt.Errorf("microsoft graph: GET %s: assignment without a principalId", path)
				}
				if it.PrincipalDisplayName == nil {
					return &PermissionError{Permission: PermApplicationReadAll, Endpoint: path, Status: 200}
				}
				set.add(Group{ID: it.PrincipalID, DisplayName: *it.PrincipalDisplayName})
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return set.groups, nil
}

// userSegment path-escapes a user id (an object id, or a UPN, which may hold
// characters such as '#'), refusing ids that would change the path.
func userSegment(userID string) (string, error) {
	if userID == "" || userID == "." || userID == ".." {
		return "", fmt.Errorf("microsoft graph: invalid user id %q", userID)
	}
	return url.PathEscape(userID), nil
}
