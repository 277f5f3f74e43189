package fakeentra

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// serveGroupMembers lists a group's members: users and nested groups, the
// direct ones or (transitive) every one reached through nesting, each once.
// Items carry @odata.type; $select picks among user and group properties.
func (t *Tenant) serveGroupMembers(w http.ResponseWriter, r *http.Request, c caller, id string, transitive bool) {
	if !c.has(permsReadGroups...) {
		denied(w, r)
		return
	}
	ix := t.snapshot()
	g := ix.groups[key(id)]
	if g == nil {
		notFound(w, r, id)
		return
	}
	sel := parseSelect(r.URL.Query().Get("$select"))
	for _, n := range sel {
		known := func(props []prop) bool {
			return slices.ContainsFunc(props, func(p prop) bool { return strings.EqualFold(p.name, n) })
		}
		if !known(userProps(&User{})) && !known(groupProps("", "")) {
			writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf(
				"Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.directoryObject'.", n))
			return
		}
	}
	members := ix.groupMembers()[key(g.ID)]
	if transitive {
		members = ix.transitiveMembers(g.ID)
	}
	items := make([]map[string]any, 0, len(members))
	for _, m := range members {
		var props []prop
		if m.kind == kindUser {
			props = userProps(ix.users[key(m.id)])
		} else {
			ng := ix.groups[key(m.id)]
			props = groupProps(ng.ID, ng.DisplayName)
		}
		item := map[string]any{"@odata.type": m.entry(false)["@odata.type"]}
		for _, p := range props {
			if (len(sel) == 0 && p.def) || containsFold(sel, p.name) {
				item[p.name] = p.value
			}
		}
		items = append(items, item)
	}
	t.servePage(w, r, items, "", "#directoryObjects")
}

// transitiveMembers follows nesting breadth-first from a group's direct
// members; each member appears once, so cycles terminate.
func (ix *dirIndex) transitiveMembers(groupID string) []memberRef {
	all := ix.groupMembers()
	seen := map[string]bool{key(groupID): true}
	var out []memberRef
	queue := slices.Clone(all[key(groupID)])
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		if seen[key(m.id)] {
			continue
		}
		seen[key(m.id)] = true
		out = append(out, m)
		if m.kind == kindGroup {
			queue = append(queue, all[key(m.id)]...)
		}
	}
	return out
}
