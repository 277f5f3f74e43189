package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ErrUserNotFound is wrapped by User's error when Graph answers 404: the
// user was deleted (or never existed).
var ErrUserNotFound = errors.New("microsoft graph: user not found")

// UserProfile is the part of a Graph user that teamgate stores. Mail may be
// empty (accounts without a mailbox).
type UserProfile struct {
	ID                string
	DisplayName       string
	Mail              string
	UserPrincipalName string
	// AccountEnabled is false for a disabled account; nil when Graph did
	// not say.
	AccountEnabled *bool
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

// GroupMembers lists a group's members, users and groups alike (filter on
// Member.Type): direct members, or every member reached through nesting
// with Config.NestedGroups (/transitiveMembers). The background job reads
// it for a group newly assigned to the app. Needs GroupMember.Read.All.
func (c *Client) GroupMembers(ctx context.Context, groupID string) ([]Member, error) {
	if groupID == "" || groupID == "." || groupID == ".." {
		return nil, fmt.Errorf("microsoft graph: invalid group id %q", groupID)
	}
	rel := "members"
	if c.cfg.NestedGroups {
		rel = "transitiveMembers"
	}
	path := "/v1.0/groups/" + url.PathEscape(groupID) + "/" + rel
	var out []Member
	seen := map[string]bool{}
	err := c.eachPage(ctx, rel, PermGroupMemberReadAll, c.graphURL(path, "$select=id&$top=999"),
		func(p page) error {
			for _, it := range p.Items {
				if it.ID == "" {
					return fmt.Errorf("microsoft graph: GET %s: member without an id", path)
				}
				if !seen[it.ID] {
					seen[it.ID] = true
					out = append(out, Member{ID: it.ID, Type: strings.TrimPrefix(it.Type, "#microsoft.graph.")})
				}
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// User returns the user's profile. A deleted user is an error wrapping
// ErrUserNotFound (and the *APIError). Needs User.Read.All.
func (c *Client) User(ctx context.Context, userID string) (UserProfile, error) {
	seg, err := userSegment(userID)
	if err != nil {
		return UserProfile{}, err
	}
	path := "/v1.0/users/" + seg
	body, err := c.get(ctx, "user", PermUserReadAll, c.graphURL(path, "$select=id,displayName,mail,userPrincipalName,accountEnabled"))
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return UserProfile{}, fmt.Errorf("%w: %w", ErrUserNotFound, err)
		}
		return UserProfile{}, err
	}
	var u struct {
		ID                string `json:"id"`
		DisplayName       string `json:"displayName"`
		Mail              string `json:"mail"`
		UserPrincipalName string `json:"userPrincipalName"`
		AccountEnabled    *bool  `json:"accountEnabled"`
	}
	if err := json.Unmarshal(body, &u); err != nil || u.ID == "" {
		return UserProfile{}, fmt.Errorf("microsoft graph: GET %s: unreadable user", path)
	}
	return UserProfile(u), nil
}

// userSegment path-escapes a user id (an object id, or a UPN, which may hold
// characters such as '#'), refusing ids that would change the path.
func userSegment(userID string) (string, error) {
	if userID == "" || userID == "." || userID == ".." {
		return "", fmt.Errorf("microsoft graph: invalid user id %q", userID)
	}
	return url.PathEscape(userID), nil
}
