package graph

import (
	"encoding/json"
	"errors"
	"fmt"
)

// odataGroup is the @odata.type of groups in memberOf answers, which also
// carry directory roles and administrative units.
const odataGroup = "#microsoft.graph.group"

// directoryObject holds the fields teamgate reads from either a memberOf
// item or an appRoleAssignment. Names are pointers: null or absent means
// Graph withheld them (the "limited information" form), which is not the
// same as a name.
type directoryObject struct {
	Type        string  `json:"@odata.type"`
	ID          string  `json:"id"`
	DisplayName *string `json:"displayName"`

	PrincipalID          string  `json:"principalId"`
	PrincipalType        string  `json:"principalType"`
	PrincipalDisplayName *string `json:"principalDisplayName"`
}

// page is one answer of a collection.
type page struct {
	Items    []directoryObject
	NextLink string
}

// parsePage decodes a collection page. A missing or null value array is an
// error (it is not how Graph says "empty").
func parsePage(body []byte) (page, error) {
	// Top-level keys are matched exactly, as Graph spells them:
	// encoding/json's struct decoding would also take "@ODATA.NEXTLINK" or
	// "Value", letting a body mean something other than what it says.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return page{}, fmt.Errorf("unreadable page: %w", err)
	}
	var p page
	rawValue, ok := top["value"]
	if !ok || string(rawValue) == "null" {
		return page{}, errors.New("page without a value array")
	}
	if err := json.Unmarshal(rawValue, &p.Items); err != nil {
		return page{}, fmt.Errorf("unreadable page: value: %w", err)
	}
	if p.Items == nil {
		p.Items = []directoryObject{}
	}
	if rawNext, ok := top["@odata.nextLink"]; ok && string(rawNext) != "null" {
		if err := json.Unmarshal(rawNext, &p.NextLink); err != nil {
			return page{}, fmt.Errorf("unreadable page: @odata.nextLink: %w", err)
		}
	}
	return p, nil
}

// groupSet collects groups in first-seen order without duplicates.
type groupSet struct {
	groups []Group
	seen   map[string]bool
}

func (s *groupSet) add(g Group) {
	if s.seen == nil {
		s.seen = make(map[string]bool)
	}
	if !s.seen[g.ID] {
		s.seen[g.ID] = true
		s.groups = append(s.groups, g)
	}
}

// deltaMember is one entry of an item's members@delta.
type deltaMember struct {
	ID      string
	Type    string // @odata.type, as sent
	Removed bool   // the entry carried a non-null "@removed"
}

// deltaItem is one item of a groups/delta page. A group may come as several
// items (big member lists are split across items and pages).
type deltaItem struct {
	ID          string
	DisplayName *string // nil when absent or null: delta items carry changed properties only
	Removed     bool    // the group itself carried a non-null "@removed"
	Members     []deltaMember
}

// deltaPage is one answer of a groups/delta round: a nextLink while the
// round goes on, a deltaLink on its last page.
type deltaPage struct {
	Items     []deltaItem
	NextLink  string
	DeltaLink string
}

// parseDeltaPage decodes a groups/delta page. Like parsePage it matches
// keys exactly, at every level: "@removed" and "members@delta" decide what
// the sync deletes, so "@REMOVED" must not count as one.
func parseDeltaPage(body []byte) (deltaPage, error) {
	top, err := jsonObject(body)
	if err != nil {
		return deltaPage{}, fmt.Errorf("unreadable page: %w", err)
	}
	rawValue, ok := top["value"]
	if !ok || string(rawValue) == "null" {
		return deltaPage{}, errors.New("page without a value array")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(rawValue, &raws); err != nil {
		return deltaPage{}, fmt.Errorf("unreadable page: value: %w", err)
	}
	p := deltaPage{Items: make([]deltaItem, 0, len(raws))}
	for i, raw := range raws {
		it, err := parseDeltaItem(raw)
		if err != nil {
			return deltaPage{}, fmt.Errorf("unreadable page: value[%d]: %w", i, err)
		}
		p.Items = append(p.Items, it)
	}
	if p.NextLink, _, err = optString(top, "@odata.nextLink"); err != nil {
		return deltaPage{}, fmt.Errorf("unreadable page: %w", err)
	}
	if p.DeltaLink, _, err = optString(top, "@odata.deltaLink"); err != nil {
		return deltaPage{}, fmt.Errorf("unreadable page: %w", err)
	}
	return p, nil
}

func parseDeltaItem(raw json.RawMessage) (deltaItem, error) {
	obj, err := jsonObject(raw)
	if err != nil {
		return deltaItem{}, err
	}
	var it deltaItem
	if it.ID, err = requiredID(obj); err != nil {
		return deltaItem{}, err
	}
	name, present, err := optString(obj, "displayName")
	if err != nil {
		return deltaItem{}, err
	}
	if present {
		it.DisplayName = &name
	}
	if it.Removed, err = removed(obj); err != nil {
		return deltaItem{}, err
	}
	rawMembers, ok := obj["members@delta"]
	if !ok || string(rawMembers) == "null" {
		return it, nil
	}
	var members []json.RawMessage
	if err := json.Unmarshal(rawMembers, &members); err != nil {
		return deltaItem{}, fmt.Errorf("members@delta: %w", err)
	}
	for i, rm := range members {
		m, err := jsonObject(rm)
		if err != nil {
			return deltaItem{}, fmt.Errorf("members@delta[%d]: %w", i, err)
		}
		var dm deltaMember
		if dm.ID, err = requiredID(m); err != nil {
			return deltaItem{}, fmt.Errorf("members@delta[%d]: %w", i, err)
		}
		if dm.Type, _, err = optString(m, "@odata.type"); err != nil {
			return deltaItem{}, fmt.Errorf("members@delta[%d]: %w", i, err)
		}
		if dm.Removed, err = removed(m); err != nil {
			return deltaItem{}, fmt.Errorf("members@delta[%d]: %w", i, err)
		}
		it.Members = append(it.Members, dm)
	}
	return it, nil
}

// jsonObject decodes a JSON object into its raw members; null and
// non-objects are errors.
func jsonObject(raw []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("null instead of an object")
	}
	return obj, nil
}

// optString reads a string member; absent and null are "", false.
func optString(obj map[string]json.RawMessage, key string) (string, bool, error) {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("%s: %w", key, err)
	}
	return s, true, nil
}

func requiredID(obj map[string]json.RawMessage) (string, error) {
	id, _, err := optString(obj, "id")
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", errors.New("an object without an id")
	}
	return id, nil
}

// removed reports whether obj carries "@removed" (an object such as
// {"reason":"deleted"}; any reason means gone).
func removed(obj map[string]json.RawMessage) (bool, error) {
	raw, ok := obj["@removed"]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	if _, err := jsonObject(raw); err != nil {
		return false, fmt.Errorf("@removed: %w", err)
	}
	return true, nil
}
