package fakeentra

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// groups/delta is served from directory snapshots: every change installs a
// new directory version (see TryUpdate), a round of delta requests reads the
// snapshot of one version, and its deltaLink names that version. The next
// round diffs the named snapshot against the current one, so the answer is
// the net change whatever happened in between, as in Graph (a member added
// then removed in one window shows as nothing).

const (
	defaultDeltaPageSize = 100
	// maxDeltaStates bounds the snapshots kept for delta tokens; a token
	// naming an evicted one gets 410, like a Graph token past its lifetime.
	maxDeltaStates   = 256
	deltaTokenPrefix = "fakeentra-delta-v1:"
)

// deltaState is the tenant's delta bookkeeping, guarded by Tenant.mu.
type deltaState struct {
	epoch    uint64 // ExpireDeltaTokens bumps it; tokens of older epochs are gone
	pageSize int
	states   map[uint64]*dirIndex // snapshots that tokens may name, by version

	// The items of the last round asked for, so paging through a big
	// answer does not recompute the diff for every page.
	cacheKey   string
	cacheItems []map[string]any
}

// SetDeltaPageSize sets how many items a groups/delta page holds (default
// 100) and how many members@delta entries one item holds: a group with more
// members comes as several items with the same id, possibly on different
// pages, as Graph sends big groups. n < 1 restores the default.
func (t *Tenant) SetDeltaPageSize(n int) {
	if n < 1 {
		n = defaultDeltaPageSize
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.delta.pageSize = n
}

// ExpireDeltaTokens makes every delta and skip token issued so far answer
// 410 Gone (syncStateNotFound), as Graph does for tokens past their
// lifetime: the client must start over with a full round.
func (t *Tenant) ExpireDeltaTokens() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.delta.epoch++
	t.delta.states = map[uint64]*dirIndex{}
	t.delta.cacheKey, t.delta.cacheItems = "", nil
}

// deltaCursor is what delta tokens carry. A $skiptoken is a position in the
// answer of one round (From → To, or a full read of To); a $deltatoken is
// only the version and options to diff against in the next round.
type deltaCursor struct {
	Epoch  uint64 `json:"e"`
	Full   bool   `json:"f,omitempty"`
	From   uint64 `json:"from,omitempty"`
	To     uint64 `json:"to"`
	Offset int    `json:"o,omitempty"`
	Size   int    `json:"n,omitempty"`
	Select string `json:"s,omitempty"` // the $select of the first request, as Graph keeps it in its tokens
}

func encodeDeltaToken(c deltaCursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(append([]byte(deltaTokenPrefix), b...))
}

func decodeDeltaToken(s string) (deltaCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return deltaCursor{}, false
	}
	rest, ok := strings.CutPrefix(string(b), deltaTokenPrefix)
	if !ok {
		return deltaCursor{}, false
	}
	var c deltaCursor
	if json.Unmarshal([]byte(rest), &c) != nil || c.Offset < 0 || c.Size < 0 {
		return deltaCursor{}, false
	}
	return c, true
}

// isDeltaPath matches groups/delta and its spellings.
func isDeltaPath(rest string) bool {
	switch strings.TrimSuffix(rest, "/") {
	case "groups/delta", "groups/delta()", "groups/microsoft.graph.delta", "groups/microsoft.graph.delta()":
		return true
	}
	return false
}

// deltaSelection is what a round's items carry: the named group properties
// (id always) and, with members, members@delta.
type deltaSelection struct {
	props   []string
	members bool
}

func parseDeltaSelect(sel string) (deltaSelection, error) {
	names := parseSelect(sel)
	var s deltaSelection
	if len(names) == 0 {
		for _, p := range groupProps("", "") {
			s.props = append(s.props, p.name)
		}
		s.members = true // Graph includes members@delta when nothing is selected
		return s, nil
	}
	for _, n := range names {
		if strings.EqualFold(n, "members") {
			s.members = true
			continue
		}
		i := slices.IndexFunc(groupProps("", ""), func(p prop) bool { return strings.EqualFold(p.name, n) })
		if i < 0 {
			return s, fmt.Errorf("Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.group'.", n)
		}
		s.props = append(s.props, groupProps("", "")[i].name)
	}
	return s, nil
}

// serveGroupsDelta implements GET /groups/delta: a full read without a
// token, the changes since a $deltatoken, a page of either with a
// $skiptoken, and $deltatoken=latest (no items, a deltaLink for now).
func (t *Tenant) serveGroupsDelta(w http.ResponseWriter, r *http.Request, c caller, apiVersion string) {
	if !c.has(permsReadGroups...) {
		denied(w, r)
		return
	}
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "$select", "$deltatoken", "$skiptoken":
		default:
			if strings.HasPrefix(k, "$") {
				writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery",
					fmt.Sprintf("fakeentra does not support the query option %s on delta.", k))
				return
			}
		}
	}
	badToken := func() {
		writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Invalid delta or skip token.")
	}
	var cur deltaCursor
	newRound, latest := true, false
	switch {
	case q.Has("$skiptoken") && q.Has("$deltatoken"):
		badToken()
		return
	case q.Has("$skiptoken"):
		var ok bool
		if cur, ok = decodeDeltaToken(q.Get("$skiptoken")); !ok || cur.Size < 1 {
			badToken()
			return
		}
		newRound = false
	case q.Get("$deltatoken") == "latest":
		latest = true
		cur = deltaCursor{Select: q.Get("$select")}
	case q.Has("$deltatoken"):
		tok, ok := decodeDeltaToken(q.Get("$deltatoken"))
		if !ok {
			badToken()
			return
		}
		cur = deltaCursor{Epoch: tok.Epoch, From: tok.To, Select: tok.Select}
	default:
		cur = deltaCursor{Full: true, Select: q.Get("$select")}
	}
	sel, err := parseDeltaSelect(cur.Select)
	if err != nil {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}

	t.mu.Lock()
	if cur.Full || latest {
		cur.Epoch = t.delta.epoch
	}
	if cur.Epoch != t.delta.epoch {
		t.mu.Unlock()
		gone(w, r)
		return
	}
	if newRound {
		cur.To, cur.Size = t.version, t.delta.pageSize
		t.delta.states[t.version] = t.dir
		t.evictDeltaStates(cur)
	}
	target, base := t.delta.states[cur.To], t.delta.states[cur.From]
	if target == nil || (!cur.Full && !latest && base == nil) {
		t.mu.Unlock()
		gone(w, r)
		return
	}
	key := fmt.Sprintf("%d/%t/%d/%d/%d/%s", cur.Epoch, cur.Full, cur.From, cur.To, cur.Size, cur.Select)
	items, cached := t.delta.cacheItems, t.delta.cacheKey == key
	t.mu.Unlock()

	if !cached && !latest {
		if cur.Full {
			base = nil
		}
		items = deltaItems(base, target, sel, cur.Size)
		t.mu.Lock()
		t.delta.cacheKey, t.delta.cacheItems = key, items
		t.mu.Unlock()
	}
	start, end := min(cur.Offset, len(items)), min(cur.Offset+cur.Size, len(items))
	page := items[start:end]
	if page == nil {
		page = []map[string]any{} // an empty round is "value": [], never null
	}
	body := map[string]any{
		"@odata.context": t.GraphURL() + "/" + apiVersion + "/$metadata#groups",
		"value":          page,
	}
	link := t.GraphURL() + "/" + apiVersion + "/groups/delta?"
	if end < len(items) {
		next := cur
		next.Offset = end
		body["@odata.nextLink"] = link + "$skiptoken=" + encodeDeltaToken(next)
	} else {
		body["@odata.deltaLink"] = link + "$deltatoken=" + encodeDeltaToken(deltaCursor{Epoch: cur.Epoch, To: cur.To, Select: cur.Select})
	}
	writeGraphJSON(w, r, body)
}

// evictDeltaStates keeps at most maxDeltaStates snapshots, dropping the
// oldest versions but never the ones cur needs. t.mu must be held.
func (t *Tenant) evictDeltaStates(cur deltaCursor) {
	if len(t.delta.states) <= maxDeltaStates {
		return
	}
	versions := make([]uint64, 0, len(t.delta.states))
	for v := range t.delta.states {
		if v != cur.To && v != cur.From {
			versions = append(versions, v)
		}
	}
	slices.Sort(versions)
	for _, v := range versions[:len(t.delta.states)-maxDeltaStates] {
		delete(t.delta.states, v)
	}
}

func gone(w http.ResponseWriter, r *http.Request) {
	writeGraphError(w, r, http.StatusGone, "syncStateNotFound",
		"The sync state generation is not found. The delta token is expired and data must be synchronized again.")
}

// deltaItems renders a round: every group of target when base is nil (a
// full read), else the groups that are new, renamed, deleted or whose
// members changed since base. Items hold the selected properties (only the
// changed ones for a changed group) and at most size members@delta entries;
// a group with more comes as several items.
func deltaItems(base, target *dirIndex, sel deltaSelection, size int) []map[string]any {
	var items []map[string]any
	emit := func(item map[string]any, members []map[string]any) {
		if len(members) == 0 {
			items = append(items, item)
			return
		}
		for chunk := range slices.Chunk(members, size) {
			it := make(map[string]any, len(item)+1)
			for k, v := range item {
				it[k] = v
			}
			it["members@delta"] = chunk
			items = append(items, it)
		}
	}
	newMembers := target.groupMembers()
	for i := range target.dir.Groups {
		g := &target.dir.Groups[i]
		var old *Group
		if base != nil {
			old = base.groups[key(g.ID)]
		}
		item := map[string]any{"id": g.ID}
		props := groupProps(g.ID, g.DisplayName)
		var oldProps []prop
		if old != nil {
			oldProps = groupProps(old.ID, old.DisplayName)
		}
		for _, name := range sel.props {
			j := slices.IndexFunc(props, func(p prop) bool { return p.name == name })
			if old == nil || !reflect.DeepEqual(props[j].value, oldProps[j].value) {
				item[name] = props[j].value
			}
		}
		var members []map[string]any
		if sel.members {
			now := newMembers[key(g.ID)]
			if old == nil {
				for _, m := range now {
					members = append(members, m.entry(false))
				}
			} else {
				was := base.groupMembers()[key(g.ID)]
				members = append(members, memberChanges(was, now)...)
			}
		}
		if old != nil && len(item) == 1 && len(members) == 0 {
			continue // unchanged
		}
		emit(item, members)
	}
	if base != nil {
		for _, g := range base.dir.Groups {
			if target.groups[key(g.ID)] == nil {
				items = append(items, map[string]any{"id": g.ID, "@removed": map[string]any{"reason": "deleted"}})
			}
		}
	}
	return items
}

// memberChanges lists the members of now that were not in was (added) and
// those of was no longer in now (removed, with @removed).
func memberChanges(was, now []memberRef) []map[string]any {
	in := func(list []memberRef) map[string]bool {
		m := make(map[string]bool, len(list))
		for _, r := range list {
			m[key(r.id)] = true
		}
		return m
	}
	wasSet, nowSet := in(was), in(now)
	var out []map[string]any
	for _, m := range was {
		if !nowSet[key(m.id)] {
			out = append(out, m.entry(true))
		}
	}
	for _, m := range now {
		if !wasSet[key(m.id)] {
			out = append(out, m.entry(false))
		}
	}
	return out
}

// memberRef is a direct member of a group: a user or a nested group.
type memberRef struct {
	id   string
	kind objectKind
}

// entry renders the member as a members@delta entry.
func (m memberRef) entry(removed bool) map[string]any {
	typ := "#microsoft.graph.user"
	if m.kind == kindGroup {
		typ = odataTypes[kindGroup]
	}
	e := map[string]any{"@odata.type": typ, "id": m.id}
	if removed {
		e["@removed"] = map[string]any{"reason": "deleted"}
	}
	return e
}
