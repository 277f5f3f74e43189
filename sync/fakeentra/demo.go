package fakeentra

import "fmt"

// DemoID returns the stable id DemoDirectory gives the object with the
// given short name ("alice", "engineering", "project-042", …), so that tests
// and docs can name demo objects without copying UUIDs.
func DemoID(name string) string { return stableUUID("teamgate-demo", name) }

// DemoAdminGroup is the short name of the demo directory's administrators
// group; DemoID(DemoAdminGroup) is its object id.
const DemoAdminGroup = "teamgate-admins"

// DemoDirectory is the directory `teamgate dev` serves. It exercises every
// case the sync engine must handle:
//
//   - alice, bob, carol, dave, erin (@example.com); dave has no mailbox and
//     is only in Marketing, so he is refused (AADSTS50105) when assignment
//     is required;
//   - Engineering, Data Science, Platform (nested in Engineering) and Finance
//     are assigned to the app; Marketing is not; All Staff is assigned and
//     contains Engineering, so transitive reads find it;
//   - carol is assigned to the app directly (a user assignment), and holds a
//     directory role (Global Reader) and sits in an administrative unit, both
//     of which memberOf mixes in with the groups;
//   - erin is in 300 project groups, 250 of them assigned: paging and large
//     team counts.
//   - alice is in "teamgate admins", which is not assigned to the app (so it
//     is no team): `teamgate dev` lists it in admin.group_ids, making alice
//     the demo administrator of the admin pages (see DemoAdminGroup).
//
// Ids are stable UUID-looking strings (see DemoID).
func DemoDirectory() Directory {
	id := DemoID
	d := Directory{
		Groups: []Group{
			{ID: id("all-staff"), DisplayName: "All Staff"},
			{ID: id("engineering"), DisplayName: "Engineering", MemberOf: []string{id("all-staff")}},
			{ID: id("platform"), DisplayName: "Platform", MemberOf: []string{id("engineering")}},
			{ID: id("data-science"), DisplayName: "Data Science"},
			{ID: id("finance"), DisplayName: "Finance"},
			{ID: id("marketing"), DisplayName: "Marketing"},
			{ID: id(DemoAdminGroup), DisplayName: "teamgate admins"},
		},
		DirectoryRoles:      []DirectoryRole{{ID: id("global-reader"), DisplayName: "Global Reader"}},
		AdministrativeUnits: []AdministrativeUnit{{ID: id("europe"), DisplayName: "Europe"}},
		AppAssignments: []string{
			id("all-staff"), id("engineering"), id("platform"), id("data-science"), id("finance"), id("carol"),
		},
		Users: []User{
			{ID: id("alice"), DisplayName: "Alice Adams", Mail: "alice@example.com", UPN: "alice@example.com",
				MemberOf: []string{id("engineering"), id("data-science"), id(DemoAdminGroup)}},
			{ID: id("bob"), DisplayName: "Bob Brown", Mail: "Bob.Brown@example.com", UPN: "bob@example.com",
				MemberOf: []string{id("platform"), id("marketing")}},
			{ID: id("carol"), DisplayName: "Carol Chen", Mail: "carol@example.com", UPN: "carol@example.com",
				MemberOf: []string{id("finance"), id("global-reader"), id("europe")}},
			{ID: id("dave"), DisplayName: "Dave Davis", UPN: "dave@example.com",
				MemberOf: []string{id("marketing")}},
			{ID: id("erin"), DisplayName: "Erin Evans", Mail: "erin@example.com", UPN: "erin@example.com"},
		},
	}
	erin := &d.Users[len(d.Users)-1]
	for i := 1; i <= 300; i++ {
		name := fmt.Sprintf("project-%03d", i)
		d.Groups = append(d.Groups, Group{ID: id(name), DisplayName: fmt.Sprintf("Project %03d", i)})
		erin.MemberOf = append(erin.MemberOf, id(name))
		if i <= 250 {
			d.AppAssignments = append(d.AppAssignments, id(name))
		}
	}
	return d
}
