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
