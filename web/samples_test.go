package web

import (
	"bytes"
	"time"
)

// Sample data for the golden files and the page checks: one entry per
// template, plus the variants whose markup differs (empty lists, errors).

const sampleRequestID = "req-123"

var (
	sampleAt  = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	budget100 = 100.0
	tpm       = int64(100000)
	chrome    = Chrome{RequestID: sampleRequestID, Nav: &Nav{UserName: "Alice Adams", IsAdmin: true, Current: "me"}}
	adminNav  = Chrome{RequestID: sampleRequestID, Nav: &Nav{UserName: "Alice Adams", IsAdmin: true, Current: "admin"}}
)

type samplePage struct {
	name   string
	render func(*bytes.Buffer) error
}

func samplePages() []samplePage {
	dataScience := MyTeam{ID: "team-ds", Alias: "Data Science", MaxBudget: &budget100, BudgetDuration: "30d", Models: []string{"gpt-3.5-turbo"}, Acting: true}
	engineering := MyTeam{ID: "team-eng", Alias: "Engineering", MaxBudget: &budget100, BudgetDuration: "30d", Models: []string{"gpt-3.5-turbo", "gpt-4o"}, TPMLimit: &tpm}
	many := make([]TeamName, 12)
	for i := range many {
		many[i] = TeamName{ID: "p" + string(rune('a'+i)), Alias: "Project " + string(rune('A'+i))}
	}
	team := TeamRow{ID: "team-eng", Alias: "Engineering", Assigned: true, Members: 2, MaxBudget: &budget100,
		BudgetDuration: "30d", Models: []string{"gpt-3.5-turbo"}, UpdatedAt: sampleAt, Href: "/teamgate/admin/team?id=team-eng"}
	pager := Pager{Noun: "teams", One: "team", From: 51, To: 100, Total: 256, Page: 2, Pages: 6,
		Prev: "/teamgate/admin?q=pro&page=1", Next: "/teamgate/admin?q=pro&page=3"}
	lastLogin := sampleAt
	return []samplePage{
		{"error_not_assigned", func(b *bytes.Buffer) error {
			return RenderError(b, ErrorPage{
				Status:    403,
				Title:     "You are not assigned to this application",
				Message:   "Microsoft Entra signed you in, but your account has not been given access to this application.",
				Next:      "Ask your administrator to assign you, or a group you belong to, to the teamgate application in Microsoft Entra.",
				Code:      "AADSTS50105",
				RequestID: sampleRequestID,
			})
		}},
		{"error_retry", func(b *bytes.Buffer) error {
			return RenderError(b, ErrorPage{
				Status: 503, Title: "Microsoft Entra is unavailable",
				Message:   "teamgate could not read your groups from Microsoft Entra, so it did not sign you in.",
				Next:      "Wait a moment and try again.",
				Action:    &Link{Href: "/oauth2/start?rd=%2F", Label: "Sign in again"},
				RequestID: sampleRequestID,
			})
		}},
		{"error_forbidden", func(b *bytes.Buffer) error {
			return RenderError(b, ErrorPage{
				Status: 403, Title: "Administrators only",
				Message:   "The admin pages are for teamgate administrators.",
				Next:      "If you need access, ask your administrator.",
				Action:    &Link{Href: "/teamgate/me", Label: "Back to my teams"},
				RequestID: sampleRequestID,
			})
		}},
		{"signed_out", func(b *bytes.Buffer) error {
			return RenderSignedOut(b, SignedOutPage{Chrome: Chrome{RequestID: sampleRequestID}, SignInHref: "/oauth2/start?rd=%2F"})
		}},
		{"sign_out_confirm", func(b *bytes.Buffer) error {
			return RenderSignOutConfirm(b, SignOutConfirmPage{Chrome: Chrome{RequestID: sampleRequestID},
				Action: "/oauth2/sign_out", CSRFToken: "csrf-token", CancelHref: "/teamgate/me"})
		}},
		{"sign_in", func(b *bytes.Buffer) error {
			return RenderSignIn(b, SignInPage{Chrome: Chrome{RequestID: sampleRequestID}, SignInHref: "/oauth2/start?rd=%2Fui%2F"})
		}},
		{"sign_in_expired", func(b *bytes.Buffer) error {
			return RenderSignIn(b, SignInPage{Chrome: Chrome{RequestID: sampleRequestID}, SignInHref: "/oauth2/start?rd=%2F", Expired: true})
		}},
		{"me", func(b *bytes.Buffer) error {
			return RenderMe(b, MePage{
				Chrome: chrome, Name: "Alice Adams", Email: "alice@example.com", UPN: "alice@example.com",
				UserID: "user-alice", Role: "internal_user", AdminVia: "member of an administrators group",
				Teams: []MyTeam{dataScience, engineering}, Acting: &dataScience, DefaultChosen: true,
				TeamHeader: "X-LiteLLM-Team-Id", CSRFToken: "csrf-token",
				Notice:      &Notice{Text: "Your default team is now Data Science."},
				LastSync:    &SyncEvent{At: sampleAt, Outcome: "ok", Duration: 12 * time.Millisecond, Joined: []TeamName{{ID: "team-ds", Alias: "Data Science"}}, Left: []TeamName{{ID: "gone"}}},
				SignOutHref: "/oauth2/sign_out",
			})
		}},
		{"me_many_teams", func(b *bytes.Buffer) error {
			teams := make([]MyTeam, 21)
			for i := range teams {
				teams[i] = MyTeam{ID: "p" + string(rune('a'+i)), Alias: "Project " + string(rune('A'+i))}
			}
			teams[0].Acting = true
			return RenderMe(b, MePage{Chrome: chrome, Email: "erin@example.com", UserID: "user-erin", Role: "internal_user",
				Teams: teams, Acting: &teams[0], TeamHeader: "X-LiteLLM-Team-Id", CSRFToken: "csrf-token", SignOutHref: "/oauth2/sign_out"})
		}},
		{"me_no_teams", func(b *bytes.Buffer) error {
			return RenderMe(b, MePage{
				Chrome: Chrome{RequestID: sampleRequestID, Nav: &Nav{UserName: "dave@example.com", Current: "me"}},
				Email:  "dave@example.com", UserID: "user-dave", Role: "internal_user",
				TeamHeader: "X-LiteLLM-Team-Id", CSRFToken: "csrf-token", SignOutHref: "/oauth2/sign_out",
				LastSync: &SyncEvent{At: sampleAt, Outcome: "error", Duration: 2 * time.Second},
			})
		}},
		{"admin_teams", func(b *bytes.Buffer) error {
			unassigned := team
			unassigned.ID, unassigned.Alias, unassigned.Assigned, unassigned.Members, unassigned.MaxBudget = "team-old", "Old Project", false, 0, nil
			return RenderAdminTeams(b, AdminTeamsPage{
				Chrome: adminNav, Query: "pro", Teams: []TeamRow{team, unassigned}, Pager: pager,
				Outbox: &OutboxPanel{Stats: []Stat{{Label: "Pending", Value: "3"}, {Label: "Parked", Value: "1", Bad: true}}, Note: "Oldest pending operation: 2025-03-14 15:09:26 UTC"},
			})
		}},
		{"admin_teams_empty", func(b *bytes.Buffer) error {
			return RenderAdminTeams(b, AdminTeamsPage{Chrome: adminNav, Pager: Pager{Noun: "teams", One: "team", Pages: 1}})
		}},
		{"admin_team", func(b *bytes.Buffer) error {
			return RenderAdminTeam(b, AdminTeamPage{
				Chrome: adminNav, Team: team, CSRFToken: "csrf-token",
				Members: []MemberRow{
					{UserID: "user-alice", Email: "alice@example.com", DisplayName: "Alice Adams", Role: "user", Source: "entra", AddedAt: sampleAt},
					{UserID: "user-bob", Email: "bob@example.com", DisplayName: "Bob Brown", Role: "user", Source: "manual", AddedAt: sampleAt},
				},
				Notice:     &Notice{Text: "No user with the id or email “nobody” has signed in to teamgate.", Bad: true},
				EventsHref: "/teamgate/admin/events?outcome=admin",
			})
		}},
		{"admin_users", func(b *bytes.Buffer) error {
			return RenderAdminUsers(b, AdminUsersPage{
				Chrome: adminNav,
				Users: []UserRow{
					{UserID: "user-alice", Email: "alice@example.com", DisplayName: "Alice Adams", Role: "internal_user", InAdminGroup: true, IsAdmin: true, Teams: 2, LastLoginAt: &lastLogin, EventsHref: "/teamgate/admin/events?user_id=user-alice"},
					{UserID: "user-dave", Email: "dave@example.com", Role: "internal_user", EventsHref: "/teamgate/admin/events?user_id=user-dave"},
				},
				Pager: Pager{Noun: "users", One: "user", From: 1, To: 2, Total: 2, Page: 1, Pages: 1},
			})
		}},
		{"admin_events", func(b *bytes.Buffer) error {
			return RenderAdminEvents(b, AdminEventsPage{
				Chrome: adminNav, Outcome: "",
				Outcomes: []Option{{Value: "", Label: "All", Selected: true}, {Value: "ok", Label: "Succeeded"}, {Value: "error", Label: "Failed"}, {Value: "admin", Label: "Admin changes"}},
				Kinds:    []Option{{Value: "", Label: "All", Selected: true}, {Value: "signin", Label: "Sign-ins"}, {Value: "background", Label: "Background sync"}, {Value: "revalidate", Label: "Re-validations"}, {Value: "admin", Label: "Admin changes"}},
				Events: []SyncEvent{
					{ID: 5, At: sampleAt, Kind: "background", Outcome: "ok", Duration: 340 * time.Millisecond, TeamsRenamed: []TeamName{{ID: "team-eng", Alias: "Engineering (all)"}},
						Detail: "incremental; 3 groups changed; 2 users checked, 0 failed; memberships +1 -1; 0 sessions ended"},
					{ID: 4, At: sampleAt, Kind: "revalidate", UserID: "user-dave", User: "dave@example.com", Outcome: "ok", Duration: 90 * time.Millisecond, Left: []TeamName{{ID: "team-eng", Alias: "Engineering"}}, Detail: "Account deleted from Microsoft Entra ID: sessions ended"},
					{ID: 3, At: sampleAt, Kind: "admin", UserID: "user-bob", User: "bob@example.com", Outcome: "admin", Actor: "alice@example.com", Joined: []TeamName{{ID: "team-eng", Alias: "Engineering"}}},
					{ID: 2, At: sampleAt, UserID: "user-erin", User: "erin@example.com", Outcome: "ok", Duration: 1500 * time.Millisecond, TeamsCreated: many, Joined: many},
					{ID: 1, At: sampleAt, UserID: "user-carol", User: "carol@example.com", Outcome: "error", Duration: 800 * time.Microsecond, Error: "reconcile: graph: Microsoft Graph is unavailable"},
				},
				Pager: Pager{Noun: "events", One: "event", From: 1, To: 3, Total: 3, Page: 1, Pages: 1},
			})
		}},
	}
}
