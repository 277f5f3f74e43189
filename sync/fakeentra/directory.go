package fakeentra

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Directory is the content of the fake tenant: who exists, who is in what,
// and who is assigned to the Enterprise App. Ids are compared
// case-insensitively, like Entra object ids.
type Directory struct {
	Users               []User               `yaml:"users"`
	Groups              []Group              `yaml:"groups"`
	DirectoryRoles      []DirectoryRole      `yaml:"directory_roles"`
	AdministrativeUnits []AdministrativeUnit `yaml:"administrative_units"`
	// AppAssignments are ids of groups or users assigned to the Enterprise App.
	AppAssignments []string `yaml:"app_assignments"`
	// AssignmentRequired is the Enterprise App's appRoleAssignmentRequired:
	// sign-in refuses (AADSTS50105) users who are not assigned directly or
	// through a group they are a direct member of. Config.AssignmentRequired
	// sets it too.
	AssignmentRequired bool `yaml:"assignment_required"`
}

// User is a person in the tenant. MemberOf lists direct memberships: ids of
// groups, directory roles or administrative units. An empty Mail is a user
// without a mailbox (Graph answers mail: null and the ID token has no email).
// Disabled is Graph's accountEnabled: false (sign-in fails with AADSTS50057);
// the zero value is an enabled account, as in Entra.
type User struct {
	ID          string   `yaml:"id"`
	DisplayName string   `yaml:"display_name"`
	Mail        string   `yaml:"mail"`
	UPN         string   `yaml:"upn"`
	MemberOf    []string `yaml:"member_of"`
	Disabled    bool     `yaml:"disabled"`
}

// Group is a security group. MemberOf lists its parent groups (nesting), and
// may also name directory roles or administrative units it belongs to.
type Group struct {
	ID          string   `yaml:"id"`
	DisplayName string   `yaml:"display_name"`
	MemberOf    []string `yaml:"member_of"`
}

// DirectoryRole is an activated Entra directory role (e.g. Global Reader);
// Graph mixes these into memberOf answers.
type DirectoryRole struct {
	ID          string `yaml:"id"`
	DisplayName string `yaml:"display_name"`
}

// AdministrativeUnit is an Entra administrative unit; also mixed into memberOf.
type AdministrativeUnit struct {
	ID          string `yaml:"id"`
	DisplayName string `yaml:"display_name"`
}

// ParseDirectory decodes a directory from YAML. It is strict so that a typo
// in a test fixture or a dev directory fails loudly instead of silently
// dropping a membership: unknown keys, duplicate ids and ids that point
// nowhere are all errors, reported together.
func ParseDirectory(yamlBytes []byte) (Directory, error) {
	var d Directory
	dec := yaml.NewDecoder(bytes.NewReader(yamlBytes))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil && !errors.Is(err, io.EOF) {
		return Directory{}, fmt.Errorf("fakeentra: parse directory: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Directory{}, errors.New("fakeentra: parse directory: more than one YAML document")
	}
	if _, err := indexDirectory(d); err != nil {
		return Directory{}, err
	}
	return d, nil
}

// LoadDirectory reads and parses a YAML directory file.
func LoadDirectory(path string) (Directory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Directory{}, fmt.Errorf("fakeentra: %w", err)
	}
	d, err := ParseDirectory(b)
	if err != nil {
		return Directory{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// clone deep-copies d so that Update can edit a copy and readers holding
// the previous snapshot never see a half-applied change.
func (d Directory) clone() Directory {
	c := Directory{
		Users:               slices.Clone(d.Users),
		Groups:              slices.Clone(d.Groups),
		DirectoryRoles:      slices.Clone(d.DirectoryRoles),
		AdministrativeUnits: slices.Clone(d.AdministrativeUnits),
		AppAssignments:      slices.Clone(d.AppAssignments),
		AssignmentRequired:  d.AssignmentRequired,
	}
	for i := range c.Users {
		c.Users[i].MemberOf = slices.Clone(c.Users[i].MemberOf)
	}
	for i := range c.Groups {
		c.Groups[i].MemberOf = slices.Clone(c.Groups[i].MemberOf)
	}
	return c
}

// objectKind says what a directory object id names.
type objectKind int

const (
	kindNone objectKind = iota
	kindUser
	kindGroup
	kindRole
	kindAdminUnit
)

// dirIndex is an immutable, validated view of a Directory with lookups by
// lower-cased id (and UPN for users). A new one is built at every change.
type dirIndex struct {
	dir      Directory
	kinds    map[string]objectKind
	users    map[string]*User // by id and by UPN
	groups   map[string]*Group
	roles    map[string]*DirectoryRole
	units    map[string]*AdministrativeUnit
	assigned map[string]bool

	membersOnce sync.Once
	members     map[string][]memberRef // see groupMembers
}

func key(id string) string { return strings.ToLower(id) }

// indexDirectory validates d and builds its index. Every problem found is
// reported, joined into one error.
func indexDirectory(d Directory) (*dirIndex, error) {
	ix := &dirIndex{
		dir:      d,
		kinds:    map[string]objectKind{},
		users:    map[string]*User{},
		groups:   map[string]*Group{},
		roles:    map[string]*DirectoryRole{},
		units:    map[string]*AdministrativeUnit{},
		assigned: map[string]bool{},
	}
	var errs []error
	add := func(what, id string, k objectKind) bool {
		if strings.TrimSpace(id) == "" {
			errs = append(errs, fmt.Errorf("%s with an empty id", what))
			return false
		}
		if _, dup := ix.kinds[key(id)]; dup {
			errs = append(errs, fmt.Errorf("%s %q: duplicate id", what, id))
			return false
		}
		ix.kinds[key(id)] = k
		return true
	}
	for i := range d.Users {
		u := &d.Users[i]
		if add("user", u.ID, kindUser) {
			ix.users[key(u.ID)] = u
		}
		switch {
		case u.UPN == "":
			errs = append(errs, fmt.Errorf("user %q: upn is required", u.ID))
		case ix.users[key(u.UPN)] != nil && ix.users[key(u.UPN)] != u:
			errs = append(errs, fmt.Errorf("user %q: upn %q is already used", u.ID, u.UPN))
		default:
			ix.users[key(u.UPN)] = u
		}
	}
	for i := range d.Groups {
		if g := &d.Groups[i]; add("group", g.ID, kindGroup) {
			ix.groups[key(g.ID)] = g
		}
	}
	for i := range d.DirectoryRoles {
		if r := &d.DirectoryRoles[i]; add("directory role", r.ID, kindRole) {
			ix.roles[key(r.ID)] = r
		}
	}
	for i := range d.AdministrativeUnits {
		if a := &d.AdministrativeUnits[i]; add("administrative unit", a.ID, kindAdminUnit) {
			ix.units[key(a.ID)] = a
		}
	}
	checkRefs := func(what, id string, refs []string) {
		seen := map[string]bool{}
		for _, ref := range refs {
			switch k := ix.kinds[key(ref)]; {
			case k == kindNone:
				errs = append(errs, fmt.Errorf("%s %q: member_of %q: no such group, directory role or administrative unit", what, id, ref))
			case k == kindUser:
				errs = append(errs, fmt.Errorf("%s %q: member_of %q is a user", what, id, ref))
			case key(ref) == key(id):
				errs = append(errs, fmt.Errorf("%s %q: member of itself", what, id))
			case seen[key(ref)]:
				errs = append(errs, fmt.Errorf("%s %q: member_of %q listed twice", what, id, ref))
			}
			seen[key(ref)] = true
		}
	}
	for _, u := range d.Users {
		checkRefs("user", u.ID, u.MemberOf)
	}
	for _, g := range d.Groups {
		checkRefs("group", g.ID, g.MemberOf)
	}
	for _, id := range d.AppAssignments {
		switch k := ix.kinds[key(id)]; {
		case k != kindUser && k != kindGroup:
			errs = append(errs, fmt.Errorf("app_assignments %q: no such user or group", id))
		case ix.assigned[key(id)]:
			errs = append(errs, fmt.Errorf("app_assignments %q: listed twice", id))
		}
		ix.assigned[key(id)] = true
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("fakeentra: invalid directory: %w", errors.Join(errs...))
	}
	return ix, nil
}

// user finds a user by object id or UPN.
func (ix *dirIndex) user(idOrUPN string) *User { return ix.users[key(idOrUPN)] }

// directObject is one entry of a memberOf answer.
type directObject struct {
	kind        objectKind
	id          string
	displayName string
}

func (ix *dirIndex) object(id string) (directObject, bool) {
	switch ix.kinds[key(id)] {
	case kindGroup:
		g := ix.groups[key(id)]
		return directObject{kindGroup, g.ID, g.DisplayName}, true
	case kindRole:
		r := ix.roles[key(id)]
		return directObject{kindRole, r.ID, r.DisplayName}, true
	case kindAdminUnit:
		a := ix.units[key(id)]
		return directObject{kindAdminUnit, a.ID, a.DisplayName}, true
	}
	return directObject{}, false
}

// memberOf returns the direct memberships of a user or group, in the order
// the directory lists them.
func (ix *dirIndex) memberOf(refs []string) []directObject {
	out := make([]directObject, 0, len(refs))
	for _, ref := range refs {
		if o, ok := ix.object(ref); ok {
			out = append(out, o)
		}
	}
	return out
}

// transitiveMemberOf follows group nesting breadth-first from the direct
// memberships; each object appears once, so cycles terminate.
func (ix *dirIndex) transitiveMemberOf(refs []string) []directObject {
	seen := map[string]bool{}
	var out []directObject
	queue := slices.Clone(refs)
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		if seen[key(ref)] {
			continue
		}
		seen[key(ref)] = true
		o, ok := ix.object(ref)
		if !ok {
			continue
		}
		out = append(out, o)
		if o.kind == kindGroup {
			queue = append(queue, ix.groups[key(ref)].MemberOf...)
		}
	}
	return out
}

// groupMembers returns the direct members of every group, by lower-cased
// group id: users in directory order, then nested groups. It is computed
// once per snapshot, on first use (groups/delta).
func (ix *dirIndex) groupMembers() map[string][]memberRef {
	ix.membersOnce.Do(func() {
		ix.members = map[string][]memberRef{}
		add := func(id string, kind objectKind, refs []string) {
			for _, ref := range refs {
				if ix.kinds[key(ref)] == kindGroup {
					ix.members[key(ref)] = append(ix.members[key(ref)], memberRef{id: id, kind: kind})
				}
			}
		}
		for _, u := range ix.dir.Users {
			add(u.ID, kindUser, u.MemberOf)
		}
		for _, g := range ix.dir.Groups {
			add(g.ID, kindGroup, g.MemberOf)
		}
	})
	return ix.members
}

// mayUse reports whether the user passes the app's assignment check: always
// when assignment is not required.
func (ix *dirIndex) mayUse(u *User) bool { return !ix.dir.AssignmentRequired || ix.isAssigned(u) }

// isAssigned reports whether the user may use the app when assignment is
// required: assigned directly or through a group they are a direct member
// of (Entra does not honour nested groups for app assignment).
func (ix *dirIndex) isAssigned(u *User) bool {
	if ix.assigned[key(u.ID)] {
		return true
	}
	for _, ref := range u.MemberOf {
		if ix.kinds[key(ref)] == kindGroup && ix.assigned[key(ref)] {
			return true
		}
	}
	return false
}
