package fakeentra

import (
	"fmt"
	"slices"
	"strings"
)

// The directory is copy-on-write: each change edits a deep copy, validates
// it and swaps it in, so a Graph answer being built from the previous
// snapshot is never torn. Changes made with the helpers below are programming
// errors in a test when they name objects that do not exist, so they panic
// with the validation error; use TryUpdate to get the error instead.

// Directory returns a deep copy of the current directory.
func (t *Tenant) Directory() Directory { return t.snapshot().dir.clone() }

// TryUpdate applies fn to a copy of the directory and installs it if it is
// still valid; otherwise the directory is unchanged and the error says why.
func (t *Tenant) TryUpdate(fn func(d *Directory)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.dir.dir.clone()
	fn(&d)
	ix, err := indexDirectory(d)
	if err != nil {
		return err
	}
	t.dir = ix
	t.version++
	return nil
}

// Update applies an arbitrary edit and re-validates the directory; it panics
// if the result is invalid (see TryUpdate).
func (t *Tenant) Update(fn func(d *Directory)) {
	if err := t.TryUpdate(fn); err != nil {
		panic(err)
	}
}

// AddGroup creates a group with no members.
func (t *Tenant) AddGroup(id, name string) {
	t.Update(func(d *Directory) {
		d.Groups = append(d.Groups, Group{ID: id, DisplayName: name})
	})
}

// RenameGroup changes a group's display name.
func (t *Tenant) RenameGroup(id, name string) {
	t.Update(func(d *Directory) {
		i := slices.IndexFunc(d.Groups, func(g Group) bool { return strings.EqualFold(g.ID, id) })
		if i < 0 {
			panic(fmt.Sprintf("fakeentra: RenameGroup: no group %q", id))
		}
		d.Groups[i].DisplayName = name
	})
}

// AddMember makes a user or a group a direct member of a group (or of a
// directory role or administrative unit). Adding an existing member is a
// no-op.
func (t *Tenant) AddMember(groupID, memberID string) {
	t.Update(func(d *Directory) {
		refs := memberRefs(d, memberID)
		if refs == nil {
			panic(fmt.Sprintf("fakeentra: AddMember: no user or group %q", memberID))
		}
		if !slices.ContainsFunc(*refs, func(r string) bool { return strings.EqualFold(r, groupID) }) {
			*refs = append(*refs, groupID)
		}
	})
}

// RemoveMember removes a user's or group's direct membership of a group.
// Removing a non-member is a no-op.
func (t *Tenant) RemoveMember(groupID, memberID string) {
	t.Update(func(d *Directory) {
		refs := memberRefs(d, memberID)
		if refs == nil {
			panic(fmt.Sprintf("fakeentra: RemoveMember: no user or group %q", memberID))
		}
		*refs = slices.DeleteFunc(*refs, func(r string) bool { return strings.EqualFold(r, groupID) })
	})
}

// SetAssignmentRequired turns the Enterprise App's
// appRoleAssignmentRequired on or off (see Directory.AssignmentRequired).
func (t *Tenant) SetAssignmentRequired(required bool) {
	t.Update(func(d *Directory) { d.AssignmentRequired = required })
}

// DisableUser sets a user's accountEnabled to false: sign-in and token
// grants fail with AADSTS50057, while Graph still returns the user.
func (t *Tenant) DisableUser(id string) { t.setDisabled("DisableUser", id, true) }

// EnableUser undoes DisableUser.
func (t *Tenant) EnableUser(id string) { t.setDisabled("EnableUser", id, false) }

func (t *Tenant) setDisabled(op, id string, disabled bool) {
	t.Update(func(d *Directory) {
		i := slices.IndexFunc(d.Users, func(u User) bool { return strings.EqualFold(u.ID, id) })
		if i < 0 {
			panic(fmt.Sprintf("fakeentra: %s: no user %q", op, id))
		}
		d.Users[i].Disabled = disabled
	})
}

// DeleteUser removes a user with their memberships and app assignment:
// Graph answers 404 for them, groups/delta reports them removed from their
// groups, and their codes and refresh tokens fail with AADSTS50034.
func (t *Tenant) DeleteUser(id string) {
	t.Update(func(d *Directory) {
		i := slices.IndexFunc(d.Users, func(u User) bool { return strings.EqualFold(u.ID, id) })
		if i < 0 {
			panic(fmt.Sprintf("fakeentra: DeleteUser: no user %q", id))
		}
		d.Users = slices.Delete(d.Users, i, i+1)
		d.AppAssignments = slices.DeleteFunc(d.AppAssignments, func(a string) bool { return strings.EqualFold(a, id) })
	})
}

// DeleteGroup removes a group, every membership of and in it, and its app
// assignment; groups/delta reports it deleted.
func (t *Tenant) DeleteGroup(id string) {
	t.Update(func(d *Directory) {
		i := slices.IndexFunc(d.Groups, func(g Group) bool { return strings.EqualFold(g.ID, id) })
		if i < 0 {
			panic(fmt.Sprintf("fakeentra: DeleteGroup: no group %q", id))
		}
		d.Groups = slices.Delete(d.Groups, i, i+1)
		isIt := func(ref string) bool { return strings.EqualFold(ref, id) }
		for j := range d.Users {
			d.Users[j].MemberOf = slices.DeleteFunc(d.Users[j].MemberOf, isIt)
		}
		for j := range d.Groups {
			d.Groups[j].MemberOf = slices.DeleteFunc(d.Groups[j].MemberOf, isIt)
		}
		d.AppAssignments = slices.DeleteFunc(d.AppAssignments, isIt)
	})
}

// memberRefs finds the MemberOf list of the user or group with the given id.
func memberRefs(d *Directory, id string) *[]string {
	for i := range d.Users {
		if strings.EqualFold(d.Users[i].ID, id) {
			return &d.Users[i].MemberOf
		}
	}
	for i := range d.Groups {
		if strings.EqualFold(d.Groups[i].ID, id) {
			return &d.Groups[i].MemberOf
		}
	}
	return nil
}

// AssignToApp assigns a user or group to the Enterprise App; assigning twice
// is a no-op.
func (t *Tenant) AssignToApp(principalID string) {
	t.Update(func(d *Directory) {
		if !slices.ContainsFunc(d.AppAssignments, func(a string) bool { return strings.EqualFold(a, principalID) }) {
			d.AppAssignments = append(d.AppAssignments, principalID)
		}
	})
}

// UnassignFromApp removes a user's or group's assignment to the app.
func (t *Tenant) UnassignFromApp(principalID string) {
	t.Update(func(d *Directory) {
		d.AppAssignments = slices.DeleteFunc(d.AppAssignments, func(a string) bool { return strings.EqualFold(a, principalID) })
	})
}

// SetAppPermissions replaces the application permissions granted to the
// client. Like Entra, it affects tokens issued from now on: a token already
// issued keeps the roles it was issued with until it expires, so a client
// that caches its token sees the change only after fetching a new one.
func (t *Tenant) SetAppPermissions(perms ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.perms = append([]string{}, perms...)
}

func (t *Tenant) appPermissions() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.perms)
}
