package web

import (
	"io"
	"time"
)

// This file holds the pages every user can meet: errors, sign-in, signed
// out and /teamgate/me.

// ErrorPage describes a failure in words a user can act on. Every field is
// shown to the user, so none may carry internal detail (causes, tokens, raw
// provider messages): the gateway logs those instead.
type ErrorPage struct {
	Status    int    // HTTP status, shown small for support conversations
	Title     string // short heading, e.g. "You are not assigned to this application"
	Message   string // what happened, in plain words
	Next      string // what the user can do about it
	Code      string // a provider error code (e.g. AADSTS50105), shown after Message, which explains it
	Action    *Link  // e.g. "Sign in again"; nil when retrying cannot help
	RequestID string // lets an administrator find the log line
}

// RenderError writes the error page. The caller sets the status code and
// headers before calling it.
func RenderError(w io.Writer, p ErrorPage) error {
	return errorTemplate.Execute(w, pageData{Title: p.Title, Status: p.Status, RequestID: p.RequestID, Page: p})
}

// SignedOutPage is shown after sign-out, once Entra has ended its session.
type SignedOutPage struct {
	Chrome
	SignInHref string // where "Sign in again" points
}

// RenderSignedOut writes the signed-out page.
func RenderSignedOut(w io.Writer, p SignedOutPage) error {
	return render(w, signedOutTemplate, "You are signed out", false, p.Chrome, p)
}

// SignOutConfirmPage asks the user to confirm a sign-out that another site
// started (a cross-site link to /oauth2/sign_out): a forced logout needs the
// user's click on this page, whose form carries the session's CSRF token.
type SignOutConfirmPage struct {
	Chrome
	Action     string // where the form posts: /oauth2/sign_out
	CSRFToken  string // the session's form token; empty without a session
	CancelHref string // "Stay signed in"
}

// RenderSignOutConfirm writes the sign-out confirmation page.
func RenderSignOutConfirm(w io.Writer, p SignOutConfirmPage) error {
	return render(w, signOutTemplate, "Sign out", false, p.Chrome, p)
}

// SignInPage is the optional landing page (server.sign_in_page) shown to a
// signed-out browser instead of sending it straight to Entra.
type SignInPage struct {
	Chrome
	SignInHref string // /oauth2/start?rd=…
	// Expired says the browser still held a session that has ended, so the
	// page explains why the user is asked to sign in again.
	Expired bool
}

// RenderSignIn writes the sign-in landing page.
func RenderSignIn(w io.Writer, p SignInPage) error {
	return render(w, signInTemplate, "Sign in", false, p.Chrome, p)
}

// MePage is /teamgate/me: who the user is, their teams, which team their
// requests act for, and their last sync.
type MePage struct {
	Chrome
	Name, Email, UPN, UserID, Role string
	// AdminVia says why the user may open the admin pages ("" when they
	// may not): e.g. "role proxy_admin" or "an administrators group".
	AdminVia string
	Teams    []MyTeam
	// Acting is the team requests act for when they name none; nil when the
	// user has no team.
	Acting *MyTeam
	// DefaultChosen is true when Acting is the user's own choice rather
	// than the first team by name.
	DefaultChosen bool
	TeamHeader    string // the header a request uses to name a team, e.g. X-LiteLLM-Team-Id
	CSRFToken     string
	Notice        *Notice // the outcome of the last form submission
	LastSync      *SyncEvent
	SignOutHref   string
}

// MyTeam is one of the signed-in user's teams.
type MyTeam struct {
	ID, Alias      string
	MaxBudget      *float64
	BudgetDuration string
	Models         []string
	TPMLimit       *int64
	RPMLimit       *int64
	Acting         bool
}

// Notice reports the outcome of a form submission at the top of a page.
type Notice struct {
	Text string
	Bad  bool // an error rather than a confirmation
}

// RenderMe writes /teamgate/me.
func RenderMe(w io.Writer, p MePage) error {
	return render(w, meTemplate, "My teams", true, p.Chrome, p)
}

// SyncEvent is one entry of the sync log: a reconcile at sign-in, or an
// admin's change to a team's members.
type SyncEvent struct {
	ID      int64
	At      time.Time
	UserID  string
	User    string // the user's email or name when known, for reading
	Outcome string // "ok", "error" or "admin"
	// Kind is what ran: "signin", "background" (the background sync; an
	// event without UserID is a whole run) or "revalidate".
	Kind     string
	Detail   string // the background run's counts, or why a re-check ended sessions
	Error    string // for "error": what went wrong (operator-facing text, admins only)
	Actor    string // for "admin": who made the change
	Duration time.Duration

	TeamsCreated    []TeamName
	TeamsRenamed    []TeamName
	TeamsUnassigned []TeamName
	Joined          []TeamName // memberships added
	Left            []TeamName // memberships removed
}

// Changed reports whether the event changed anything.
func (e SyncEvent) Changed() bool {
	return len(e.TeamsCreated)+len(e.TeamsRenamed)+len(e.TeamsUnassigned)+len(e.Joined)+len(e.Left) > 0
}

// TeamName names a team by alias when it is known, else by id.
type TeamName struct {
	ID, Alias string
}
