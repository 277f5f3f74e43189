package fakeentra

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// serveGraph routes /graph/... . rest is the path after "/graph/".
//
// Supported (all GET):
//
//	v1.0/users/{id|upn}                              ($select)
//	v1.0/users/{id}/memberOf[/microsoft.graph.group]  (and transitiveMemberOf)
//	v1.0/me, v1.0/me/memberOf[...], v1.0/me/transitiveMemberOf[...]  (delegated only)
//	v1.0/groups/{id}
//	v1.0/groups/{id}/members, v1.0/groups/{id}/transitiveMembers  ($select, $top)
//	v1.0/groups/delta                                ($select, $deltatoken, $skiptoken; see graph_delta.go)
//	v1.0/servicePrincipals/{id}                      ($select)
//	v1.0/servicePrincipals(appId='{client id}')
//	v1.0/servicePrincipals/{id}/appRoleAssignedTo
//	v1.0/servicePrincipals(appId='{client id}')/appRoleAssignedTo
//	oidc/userinfo
func (t *Tenant) serveGraph(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodGet && !(rest == "oidc/userinfo" && r.Method == http.MethodPost) {
		writeGraphError(w, r, http.StatusMethodNotAllowed, "Request_BadRequest", "fakeentra serves Graph read operations (GET) only.")
		return
	}
	c, ok := t.authenticate(w, r)
	if !ok {
		return
	}
	if rest == "oidc/userinfo" {
		t.serveUserInfo(w, r, c)
		return
	}
	version, rest, _ := strings.Cut(rest, "/")
	if version != "v1.0" && version != "beta" {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid version: %s", version))
		return
	}
	if isDeltaPath(rest) {
		t.serveGroupsDelta(w, r, c, version) // its tokens carry their own options
		return
	}
	if !t.checkQuery(w, r) {
		return
	}
	seg := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	switch {
	case seg[0] == "me":
		if c.appOnly {
			writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "/me request is only valid with delegated authentication flow.")
			return
		}
		t.serveUserPath(w, r, c, c.userID, seg[1:], true)
	case seg[0] == "users" && len(seg) >= 2:
		t.serveUserPath(w, r, c, seg[1], seg[2:], false)
	case seg[0] == "groups" && len(seg) == 2:
		t.serveGroup(w, r, c, seg[1])
	case seg[0] == "groups" && len(seg) == 3 && (seg[2] == "members" || seg[2] == "transitiveMembers"):
		t.serveGroupMembers(w, r, c, seg[1], seg[2] == "transitiveMembers")
	case seg[0] == "servicePrincipals" && len(seg) == 2:
		t.serveServicePrincipal(w, r, c, strings.EqualFold(seg[1], t.cfg.ServicePrincipalID))
	case strings.HasPrefix(seg[0], "servicePrincipals(") && len(seg) == 1:
		t.serveServicePrincipal(w, r, c, seg[0] == "servicePrincipals(appId='"+t.cfg.ClientID+"')")
	case seg[0] == "servicePrincipals" && len(seg) == 3 && seg[2] == "appRoleAssignedTo":
		t.serveAppRoleAssignedTo(w, r, c, strings.EqualFold(seg[1], t.cfg.ServicePrincipalID))
	case strings.HasPrefix(seg[0], "servicePrincipals(") && len(seg) == 2 && seg[1] == "appRoleAssignedTo":
		t.serveAppRoleAssignedTo(w, r, c, seg[0] == "servicePrincipals(appId='"+t.cfg.ClientID+"')")
	default:
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", seg[0]))
	}
}

// serveUserPath serves a user and its membership relationships; self is
// true for /me, where a delegated token's User.Read is enough.
func (t *Tenant) serveUserPath(w http.ResponseWriter, r *http.Request, c caller, id string, seg []string, self bool) {
	ix := t.snapshot()
	u := ix.user(id)
	self = self || (!c.appOnly && u != nil && strings.EqualFold(u.ID, c.userID))
	if len(seg) == 0 {
		if !(self && c.has("User.Read")) && !c.has(permsReadUsers...) {
			denied(w, r)
			return
		}
		if u == nil {
			notFound(w, r, id)
			return
		}
		obj, err := selectProps(userProps(u), r.URL.Query().Get("$select"), "user")
		if err != nil {
			writeGraphError(w, r, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		obj["@odata.context"] = t.GraphURL() + "/v1.0/$metadata#users/$entity"
		writeGraphJSON(w, r, obj)
		return
	}
	if len(seg) > 2 || (seg[0] != "memberOf" && seg[0] != "transitiveMemberOf") {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", seg[0]))
		return
	}
	if !(self && c.has("User.Read")) && !c.has(permsReadMemberOf...) {
		denied(w, r)
		return
	}
	if u == nil {
		notFound(w, r, id)
		return
	}
	objs := ix.memberOf(u.MemberOf)
	if seg[0] == "transitiveMemberOf" {
		objs = ix.transitiveMemberOf(u.MemberOf)
	}
	cast := kindNone
	if len(seg) == 2 {
		if cast = castKind(seg[1]); cast == kindNone {
			writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", seg[1]))
			return
		}
	}
	t.serveDirectoryObjects(w, r, c, objs, cast)
}

func (t *Tenant) serveGroup(w http.ResponseWriter, r *http.Request, c caller, id string) {
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
	obj, err := selectProps(groupProps(g.ID, g.DisplayName), r.URL.Query().Get("$select"), "group")
	if err != nil {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	obj["@odata.context"] = t.GraphURL() + "/v1.0/$metadata#groups/$entity"
	writeGraphJSON(w, r, obj)
}

// serveServicePrincipal answers the Enterprise App's service principal,
// whose appRoleAssignmentRequired says whether users must be assigned.
func (t *Tenant) serveServicePrincipal(w http.ResponseWriter, r *http.Request, c caller, isOurs bool) {
	if !c.has(permsReadApps...) {
		denied(w, r)
		return
	}
	if !isOurs {
		notFound(w, r, strings.TrimPrefix(r.URL.Path, "/graph/v1.0/servicePrincipals/"))
		return
	}
	required := t.snapshot().dir.AssignmentRequired
	props := []prop{
		{"id", t.cfg.ServicePrincipalID, true}, {"deletedDateTime", nil, true}, {"accountEnabled", true, true},
		{"appDisplayName", "teamgate", true}, {"appId", t.cfg.ClientID, true},
		{"appOwnerOrganizationId", t.cfg.TenantID, true}, {"appRoleAssignmentRequired", required, true},
		{"displayName", "teamgate", true}, {"servicePrincipalType", "Application", true},
		{"signInAudience", "AzureADMyOrg", true}, {"tags", []string{"WindowsAzureActiveDirectoryIntegratedApp"}, true},
	}
	obj, err := selectProps(props, r.URL.Query().Get("$select"), "servicePrincipal")
	if err != nil {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	obj["@odata.context"] = t.GraphURL() + "/v1.0/$metadata#servicePrincipals/$entity"
	writeGraphJSON(w, r, obj)
}

// serveAppRoleAssignedTo lists the users and groups assigned to the
// Enterprise App, each with the default access role (all-zero appRoleId).
func (t *Tenant) serveAppRoleAssignedTo(w http.ResponseWriter, r *http.Request, c caller, isOurs bool) {
	if !c.has(permsReadApps...) {
		denied(w, r)
		return
	}
	if !isOurs {
		notFound(w, r, strings.Split(strings.TrimPrefix(r.URL.Path, "/graph/v1.0/servicePrincipals/"), "/")[0])
		return
	}
	ix := t.snapshot()
	items := make([]map[string]any, 0, len(ix.dir.AppAssignments))
	for _, pid := range ix.dir.AppAssignments {
		typ, name := "User", ""
		if g := ix.groups[key(pid)]; g != nil {
			typ, name, pid = "Group", g.DisplayName, g.ID
		} else if u := ix.users[key(pid)]; u != nil {
			name, pid = u.DisplayName, u.ID
		}
		items = append(items, map[string]any{
			"id":                   assignmentID(pid),
			"deletedDateTime":      nil,
			"appRoleId":            "00000000-0000-0000-0000-000000000000",
			"createdDateTime":      "2024-01-01T00:00:00Z",
			"principalDisplayName": name,
			"principalId":          pid,
			"principalType":        typ,
			"resourceDisplayName":  "teamgate",
			"resourceId":           t.cfg.ServicePrincipalID,
		})
	}
	t.servePage(w, r, items, "appRoleAssignment", "#servicePrincipals('"+t.cfg.ServicePrincipalID+"')/appRoleAssignedTo")
}

// assignmentID mimics the 43-character base64url ids Entra gives
// appRoleAssignments, stable per principal.
func assignmentID(principalID string) string {
	h := sha256.Sum256([]byte("assignment\x00" + strings.ToLower(principalID)))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// serveUserInfo is the OIDC userinfo endpoint, which Entra serves from Graph.
func (t *Tenant) serveUserInfo(w http.ResponseWriter, r *http.Request, c caller) {
	u := t.snapshot().user(c.userID)
	if c.appOnly || u == nil {
		writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure.")
		return
	}
	info := map[string]any{"sub": t.pairwiseSub(u.ID), "name": u.DisplayName}
	if u.Mail != "" {
		info["email"] = u.Mail
	}
	writeGraphJSON(w, r, info)
}

func notFound(w http.ResponseWriter, r *http.Request, id string) {
	writeGraphError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
		fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
}

// writeGraphJSON answers 200 with Graph's OData content type and request ids.
func writeGraphJSON(w http.ResponseWriter, r *http.Request, v any) {
	reqID := randomUUID()
	clientReqID := r.Header.Get("client-request-id")
	if clientReqID == "" {
		clientReqID = reqID
	}
	w.Header().Set("request-id", reqID)
	w.Header().Set("client-request-id", clientReqID)
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
