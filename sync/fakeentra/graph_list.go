package fakeentra

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

const (
	defaultPageSize = 100
	maxPageSize     = 999
)

// checkQuery rejects OData options the fake does not implement, so that a
// client relying on one fails loudly instead of getting an unfiltered answer,
// and enforces Graph's rule that $count on directory objects needs
// ConsistencyLevel: eventual.
func (t *Tenant) checkQuery(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "$select", "$top", "$skiptoken":
		case "$count":
			if q.Get(k) == "true" && !strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") {
				writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest",
					"$count is not currently supported without the ConsistencyLevel header set to eventual.")
				return false
			}
		default:
			if strings.HasPrefix(k, "$") {
				writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery",
					fmt.Sprintf("fakeentra does not support the query option %s.", k))
				return false
			}
		}
	}
	return true
}

// prop is one property of a Graph entity; def marks the properties Graph
// returns when there is no $select.
type prop struct {
	name  string
	value any
	def   bool
}

func userProps(u *User) []prop {
	var mail any
	if u.Mail != "" {
		mail = u.Mail
	}
	return []prop{
		{"id", u.ID, true}, {"displayName", u.DisplayName, true}, {"mail", mail, true},
		{"userPrincipalName", u.UPN, true}, {"givenName", nil, true}, {"surname", nil, true},
		{"jobTitle", nil, true}, {"mobilePhone", nil, true}, {"officeLocation", nil, true},
		{"preferredLanguage", nil, true}, {"businessPhones", []string{}, true},
		{"accountEnabled", !u.Disabled, false}, {"userType", "Member", false},
		{"mailNickname", strings.Split(u.UPN, "@")[0], false},
	}
}

func groupProps(id, name string) []prop {
	return []prop{
		{"id", id, true}, {"deletedDateTime", nil, true}, {"classification", nil, true},
		{"createdDateTime", "2024-01-01T00:00:00Z", true}, {"description", nil, true},
		{"displayName", name, true}, {"groupTypes", []string{}, true}, {"mail", nil, true},
		{"mailEnabled", false, true}, {"mailNickname", stableUUID("nick", id)[:8], true},
		{"securityEnabled", true, true}, {"visibility", nil, true},
	}
}

func roleProps(id, name string) []prop {
	return []prop{
		{"id", id, true}, {"deletedDateTime", nil, true}, {"description", nil, true},
		{"displayName", name, true}, {"roleTemplateId", stableUUID("role-template", id), true},
	}
}

func unitProps(id, name string) []prop {
	return []prop{
		{"id", id, true}, {"deletedDateTime", nil, true}, {"description", nil, true},
		{"displayName", name, true}, {"visibility", nil, true},
	}
}

func parseSelect(sel string) []string {
	var out []string
	for _, s := range strings.Split(sel, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// selectProps renders an entity with Graph's $select semantics: without
// $select the default properties, with it exactly the named ones (an unknown
// name is an error, as in Graph).
func selectProps(props []prop, sel, typeName string) (map[string]any, error) {
	out := map[string]any{}
	names := parseSelect(sel)
	if len(names) == 0 {
		for _, p := range props {
			if p.def {
				out[p.name] = p.value
			}
		}
		return out, nil
	}
	for _, n := range names {
		found := false
		for _, p := range props {
			if strings.EqualFold(p.name, n) {
				out[p.name], found = p.value, true
			}
		}
		if !found {
			return nil, fmt.Errorf("Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.%s'.", n, typeName)
		}
	}
	return out, nil
}

var odataTypes = map[objectKind]string{
	kindGroup:     "#microsoft.graph.group",
	kindRole:      "#microsoft.graph.directoryRole",
	kindAdminUnit: "#microsoft.graph.administrativeUnit",
}

// castKind maps an OData cast segment to the object kind it keeps.
func castKind(seg string) objectKind {
	switch seg {
	case "microsoft.graph.group":
		return kindGroup
	case "microsoft.graph.directoryRole":
		return kindRole
	case "microsoft.graph.administrativeUnit":
		return kindAdminUnit
	}
	return kindNone
}

// serveDirectoryObjects renders a memberOf-style collection. Objects the
// caller may not read come back in limited-information form (only
// @odata.type and id non-null). With a cast, other kinds are dropped and
// items carry no @odata.type, as in Graph.
func (t *Tenant) serveDirectoryObjects(w http.ResponseWriter, r *http.Request, c caller, objs []directObject, cast objectKind) {
	sel := parseSelect(r.URL.Query().Get("$select"))
	for _, n := range sel {
		if !knownDirectoryProp(n, cast) {
			writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf(
				"Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.directoryObject'.", n))
			return
		}
	}
	items := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		if cast != kindNone && o.kind != cast {
			continue
		}
		props := objectProps(o)
		if !c.canSee(o.kind) {
			for i := range props {
				if props[i].name != "id" {
					props[i].value = nil
				}
			}
		}
		item := map[string]any{}
		for _, p := range props {
			if (len(sel) == 0 && p.def) || containsFold(sel, p.name) {
				item[p.name] = p.value
			}
		}
		if cast == kindNone {
			item["@odata.type"] = odataTypes[o.kind]
		}
		items = append(items, item)
	}
	ctx := "#directoryObjects"
	if cast == kindGroup {
		ctx = "#groups"
	}
	t.servePage(w, r, items, "", ctx)
}

func objectProps(o directObject) []prop {
	switch o.kind {
	case kindGroup:
		return groupProps(o.id, o.displayName)
	case kindRole:
		return roleProps(o.id, o.displayName)
	}
	return unitProps(o.id, o.displayName)
}

func knownDirectoryProp(name string, cast objectKind) bool {
	for _, k := range []objectKind{kindGroup, kindRole, kindAdminUnit} {
		if cast != kindNone && k != cast {
			continue
		}
		for _, p := range objectProps(directObject{kind: k}) {
			if strings.EqualFold(p.name, name) {
				return true
			}
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// servePage answers one page of a collection: $top (default 100, at most
// 999), and an absolute @odata.nextLink carrying the original query plus a
// $skiptoken while items remain. selectType, when set, applies $select to
// the items with that entity type's property names.
func (t *Tenant) servePage(w http.ResponseWriter, r *http.Request, items []map[string]any, selectType, context string) {
	q := r.URL.Query()
	top := defaultPageSize
	if s := q.Get("$top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery",
				fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", s, maxPageSize))
			return
		}
		top = n
	}
	offset := 0
	if s := q.Get("$skiptoken"); s != "" {
		n, ok := decodeSkipToken(s)
		if !ok {
			writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Invalid skip token.")
			return
		}
		offset = n
	}
	if selectType != "" {
		if sel := q.Get("$select"); sel != "" {
			for i, it := range items {
				props := make([]prop, 0, len(it))
				for k, v := range it {
					props = append(props, prop{k, v, true})
				}
				picked, err := selectProps(props, sel, selectType)
				if err != nil {
					writeGraphError(w, r, http.StatusBadRequest, "BadRequest", err.Error())
					return
				}
				items[i] = picked
			}
		}
	}
	page := items[min(offset, len(items)):min(offset+top, len(items))]
	body := map[string]any{
		"@odata.context": t.GraphURL() + "/v1.0/$metadata" + context,
		"value":          page,
	}
	if q.Get("$count") == "true" {
		body["@odata.count"] = len(items)
	}
	if offset+top < len(items) {
		body["@odata.nextLink"] = t.nextLink(r, offset+top)
	}
	writeGraphJSON(w, r, body)
}

// nextLink rebuilds the request URL on the public base with $skiptoken
// replaced, keeping the caller's other options verbatim (so `$top` stays
// unescaped, as in Graph's own links).
func (t *Tenant) nextLink(r *http.Request, offset int) string {
	var parts []string
	for _, p := range strings.Split(r.URL.RawQuery, "&") {
		if p == "" || strings.HasPrefix(p, "$skiptoken=") || strings.HasPrefix(p, "%24skiptoken=") {
			continue
		}
		parts = append(parts, p)
	}
	parts = append(parts, "$skiptoken="+encodeSkipToken(offset))
	return t.base() + r.URL.EscapedPath() + "?" + strings.Join(parts, "&")
}

const skipTokenPrefix = "fakeentra-v1:"

// Skip tokens are opaque to clients (they must follow nextLink verbatim),
// so an offset wrapped in base64 is enough.
func encodeSkipToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(skipTokenPrefix + strconv.Itoa(offset)))
}

func decodeSkipToken(s string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), skipTokenPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}
