// Package web renders teamgate's own pages: error pages, the sign-in and
// signed-out pages, /teamgate/me and the admin pages. Templates and the
// stylesheet are embedded so that the binary is self-contained; the pages use
// no JavaScript and load nothing from other origins, which lets the gateway
// serve them under a strict Content-Security-Policy.
//
// The package is a leaf: the gateway fills the page structs declared here,
// and every field is shown to the person reading the page, so none may carry
// internal detail (causes, tokens, raw provider messages).
package web

import (
	"embed"
	"html/template"
	"io"
	"io/fs"
	"net/http"
)

// StaticPrefix is where the gateway mounts Static; the templates link the
// stylesheet under it.
const StaticPrefix = "/teamgate/static/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Each page is parsed together with the shared layout and partials into its
// own set, so that every page can define the "content" block without
// clashing.
var (
	errorTemplate       = mustParse("error.html")
	signedOutTemplate   = mustParse("signed_out.html")
	signOutTemplate     = mustParse("sign_out_confirm.html")
	signInTemplate      = mustParse("sign_in.html")
	meTemplate          = mustParse("me.html")
	adminTeamsTemplate  = mustParse("admin_teams.html")
	adminTeamTemplate   = mustParse("admin_team.html")
	adminUsersTemplate  = mustParse("admin_users.html")
	adminEventsTemplate = mustParse("admin_events.html")
)

func mustParse(page string) *template.Template {
	return template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS,
		"templates/layout.html", "templates/partials.html", "templates/"+page))
}

// Link is a call to action on a page.
type Link struct {
	Href  string
	Label string
}

// Chrome is what every page shows around its content.
type Chrome struct {
	// RequestID lets a user quote the request and an operator find its
	// log line; every page shows it.
	RequestID string
	// Nav is the signed-in user's navigation; nil on pages shown to
	// signed-out users and on error pages.
	Nav *Nav
}

// Nav is the top bar of a signed-in user's pages.
type Nav struct {
	UserName string // display name, else email, else user id
	IsAdmin  bool   // shows the link to the admin pages
	Current  string // "me" or "admin": marks the current section
}

// pageData is what the layout sees.
type pageData struct {
	Title     string
	Wide      bool // tables: use the full width
	Status    int  // error pages: shown next to the request id
	RequestID string
	Nav       *Nav
	Page      any
}

func render(w io.Writer, t *template.Template, title string, wide bool, c Chrome, page any) error {
	return t.Execute(w, pageData{Title: title, Wide: wide, RequestID: c.RequestID, Nav: c.Nav, Page: page})
}

// Static serves the embedded stylesheet (and any future assets) from the
// root of the handler; mount it with http.StripPrefix(StaticPrefix, ...).
func Static() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return http.FileServerFS(sub)
}
