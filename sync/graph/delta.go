package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Member is one entry of members@delta.
type Member struct {
	ID   string
	Type string // "user", "group", or the @odata.type without "#microsoft.graph."
}

// GroupChange is what /groups/delta says about one group, merged across
// pages.
type GroupChange struct {
	ID          string
	DisplayName *string // set when the answer carried a displayName
	// Deleted: the group itself came with "@removed" (reason deleted, or
	// changed, which is a soft delete). Its member lists then mean nothing.
	Deleted        bool
	MembersAdded   []Member
	MembersRemoved []Member // members@delta entries carrying "@removed"
}

// Delta is one round of /groups/delta.
type Delta struct {
	// Changes has one entry per group id, in first-seen order; a group
	// split over several items or pages is merged, and a member named twice
	// counts as its last entry says.
	Changes []GroupChange
	// DeltaLink is the @odata.deltaLink to pass to the next round.
	DeltaLink string
	// Full is true when the round started without a deltaLink: every group
	// is listed, and MembersAdded is its complete direct member list.
	Full bool
}

// ErrDeltaExpired means Graph no longer knows the deltaLink's sync state
// (410 Gone, or a 400 whose code says the token is unknown or expired, as
// Graph answers past the 7-day lifetime): the caller must start a full
// round with an empty deltaLink.
var ErrDeltaExpired = errors.New("microsoft graph: the delta token expired or is unknown; a full sync is needed")

// expiredDeltaCodes are the 400 error codes that mean "start over".
var expiredDeltaCodes = []string{"syncStateNotFound", "syncStateInvalid", "resyncRequired", "Directory_ExpiredPageToken"}

// maxDeltaPages bounds a round: Graph splits big member lists over pages,
// so a round can be much longer than the number of groups suggests.
const maxDeltaPages = 20000

// deltaSelect is what teamgate reads of every group.
const deltaSelect = "$select=displayName,members"

// GroupsDelta runs one round of GET /groups/delta?$select=displayName,members,
// from the start when deltaLink is empty, else from the stored deltaLink
// (which must point at the configured graph_url), following nextLinks to
// the round's deltaLink. Needs GroupMember.Read.All. The round is all or
// nothing: on any error the caller keeps its previous deltaLink.
func (c *Client) GroupsDelta(ctx context.Context, deltaLink string) (Delta, error) {
	const path = "/v1.0/groups/delta"
	next := c.graphURL(path, deltaSelect)
	full := deltaLink == ""
	if !full {
		if err := c.checkLinkHost(deltaLink, "the stored deltaLink"); err != nil {
			return Delta{}, fmt.Errorf("microsoft graph: GET %s: %w", path, err)
		}
		next = deltaLink
	}
	var m deltaMerge
	for n := 1; ; n++ {
		if n > maxDeltaPages {
			return Delta{}, fmt.Errorf("microsoft graph: GET %s: more than %d pages", path, maxDeltaPages)
		}
		body, err := c.get(ctx, "groupsDelta", PermGroupMemberReadAll, next)
		if err != nil {
			return Delta{}, deltaError(err)
		}
		p, err := parseDeltaPage(body)
		if err != nil {
			return Delta{}, fmt.Errorf("microsoft graph: GET %s: %w", pathOf(next), err)
		}
		m.add(p.Items)
		switch {
		case p.DeltaLink != "":
			if err := c.checkLinkHost(p.DeltaLink, "@odata.deltaLink"); err != nil {
				return Delta{}, fmt.Errorf("microsoft graph: GET %s: %w", pathOf(next), err)
			}
			return Delta{Changes: m.result(), DeltaLink: p.DeltaLink, Full: full}, nil
		case p.NextLink == "":
			return Delta{}, fmt.Errorf("microsoft graph: GET %s: page with neither @odata.nextLink nor @odata.deltaLink", pathOf(next))
		}
		if err := c.checkNextLink(p.NextLink, next); err != nil {
			return Delta{}, fmt.Errorf("microsoft graph: GET %s: %w", pathOf(next), err)
		}
		next = p.NextLink
	}
}

// ProbeGroupsDelta reads the first page of a fresh group delta round and
// discards it: `teamgate check` uses it to prove the background sync may
// read deltas (GroupMember.Read.All) without walking the whole tenant.
func (c *Client) ProbeGroupsDelta(ctx context.Context) error {
	body, err := c.get(ctx, "groupsDelta", PermGroupMemberReadAll, c.graphURL("/v1.0/groups/delta", deltaSelect))
	if err != nil {
		return deltaError(err)
	}
	if _, err := parseDeltaPage(body); err != nil {
		return fmt.Errorf("microsoft graph: GET /v1.0/groups/delta: %w", err)
	}
	return nil
}

// deltaError marks the answers that mean "the token is gone" with
// ErrDeltaExpired, keeping the *APIError for errors.As.
func deltaError(err error) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err
	}
	expired := ae.Status == http.StatusGone
	if ae.Status == http.StatusBadRequest {
		for _, code := range expiredDeltaCodes {
			expired = expired || strings.EqualFold(ae.Code, code)
		}
	}
	if expired {
		return fmt.Errorf("%w: %w", ErrDeltaExpired, err)
	}
	return err
}

// deltaMerge folds a round's items into one GroupChange per group.
type deltaMerge struct {
	groups []*mergedGroup
	byID   map[string]*mergedGroup // by lower-cased id
}

type mergedGroup struct {
	change  GroupChange
	members []string // lower-cased member ids, first-seen order
	last    map[string]deltaMember
}

func (m *deltaMerge) add(items []deltaItem) {
	if m.byID == nil {
		m.byID = make(map[string]*mergedGroup)
	}
	for _, it := range items {
		k := strings.ToLower(it.ID)
		g := m.byID[k]
		if g == nil {
			g = &mergedGroup{change: GroupChange{ID: it.ID}, last: map[string]deltaMember{}}
			m.byID[k] = g
			m.groups = append(m.groups, g)
		}
		if it.DisplayName != nil {
			name := *it.DisplayName
			g.change.DisplayName = &name
		}
		g.change.Deleted = g.change.Deleted || it.Removed
		for _, dm := range it.Members {
			mk := strings.ToLower(dm.ID)
			if _, seen := g.last[mk]; !seen {
				g.members = append(g.members, mk)
			}
			g.last[mk] = dm
		}
	}
}

func (m *deltaMerge) result() []GroupChange {
	out := make([]GroupChange, 0, len(m.groups))
	for _, g := range m.groups {
		ch := g.change
		for _, mk := range g.members {
			dm := g.last[mk]
			member := Member{ID: dm.ID, Type: strings.TrimPrefix(dm.Type, "#microsoft.graph.")}
			if dm.Removed {
				ch.MembersRemoved = append(ch.MembersRemoved, member)
			} else {
				ch.MembersAdded = append(ch.MembersAdded, member)
			}
		}
		out = append(out, ch)
	}
	return out
}
