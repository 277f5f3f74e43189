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
	var raw struct {
		Value    *[]directoryObject `json:"value"`
		NextLink string             `json:"@odata.nextLink"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return page{}, fmt.Errorf("unreadable page: %w", err)
	}
	if raw.Value == nil {
		return page{}, errors.New("page without a value array")
	}
	return page{Items: *raw.Value, NextLink: raw.NextLink}, nil
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
