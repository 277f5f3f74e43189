package fakeentra

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
)

// caller is who a Graph request acts for, from its bearer token.
type caller struct {
	appOnly bool
	userID  string   // delegated tokens: the signed-in user's oid
	perms   []string // roles (app-only) or scp (delegated)
}

// has reports whether the caller holds any of the given permissions.
func (c caller) has(perms ...string) bool {
	return slices.ContainsFunc(perms, func(p string) bool { return slices.Contains(c.perms, p) })
}

// authenticate validates the bearer token of a Graph request the way Graph
// does: signature by one of the tenant's keys, audience, issuer and expiry.
// On failure it has written the 401 and returns false.
func (t *Tenant) authenticate(w http.ResponseWriter, r *http.Request) (caller, bool) {
	fail := func(msg string) (caller, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="`+t.AuthorityHost()+`/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		return caller{}, false
	}
	scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if raw == "" || !strings.EqualFold(scheme, "Bearer") {
		return fail("Access token is empty.")
	}
	claims, err := t.verifyJWT(strings.TrimSpace(raw))
	if err != nil {
		return fail("Access token validation failure. Invalid signature or malformed token.")
	}
	if claims["aud"] != t.GraphURL() {
		return fail("Access token validation failure. Invalid audience.")
	}
	if claims["iss"] != t.Issuer() || claims["tid"] != t.cfg.TenantID {
		return fail("Access token validation failure. Invalid issuer.")
	}
	now := t.now().Unix()
	exp, errExp := numClaim(claims, "exp")
	nbf, errNbf := numClaim(claims, "nbf")
	switch {
	case errExp != nil || errNbf != nil:
		return fail("Access token validation failure. Lifetime claims are missing.")
	case now >= exp:
		return fail("Lifetime validation failed, the token is expired.")
	case now < nbf-300:
		return fail("Lifetime validation failed, the token is not yet valid.")
	}
	c := caller{}
	if claims["idtyp"] == "app" {
		c.appOnly = true
		if roles, ok := claims["roles"].([]any); ok {
			for _, r := range roles {
				if s, ok := r.(string); ok {
					c.perms = append(c.perms, s)
				}
			}
		}
	} else {
		c.userID, _ = claims["oid"].(string)
		scp, _ := claims["scp"].(string)
		c.perms = strings.Fields(scp)
		if c.userID == "" {
			return fail("Access token validation failure. The token has no oid.")
		}
	}
	return c, true
}

func numClaim(claims map[string]any, name string) (int64, error) {
	n, ok := claims[name].(json.Number)
	if !ok {
		return 0, errors.New("missing " + name)
	}
	return n.Int64()
}

// Permission sets that grant each kind of read, app-only or delegated.
var (
	permsReadUsers = []string{"User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	// permsReadMemberOf lets a caller list memberships at all; what it sees
	// of each item then depends on the item's type (see canSee).
	permsReadMemberOf = []string{"User.Read.All", "User.ReadBasic.All", "GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	permsReadGroups   = []string{"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	permsReadRoles    = []string{"RoleManagement.Read.Directory", "RoleManagement.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	permsReadUnits    = []string{"AdministrativeUnit.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	permsReadApps     = []string{"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)

// canSee reports whether the caller may read the properties of a directory
// object of the given kind. Without it, Graph still lists the object but in
// "limited information" form: @odata.type and id, every other property null.
func (c caller) canSee(k objectKind) bool {
	switch k {
	case kindGroup:
		return c.has(permsReadGroups...)
	case kindRole:
		return c.has(permsReadRoles...)
	case kindAdminUnit:
		return c.has(permsReadUnits...)
	}
	return false
}

// denied writes Graph's 403 for a missing permission.
func denied(w http.ResponseWriter, r *http.Request) {
	writeGraphError(w, r, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}
