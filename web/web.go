// Package web renders teamgate's own pages: the sign-in error page and the
// signed-out page. Templates and the stylesheet are embedded so that the
// binary is self-contained; the pages use no JavaScript and load nothing from
// other origins, which lets the gateway serve them under a strict
// Content-Security-Policy.
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

// Each page is parsed together with the shared layout into its own set, so
// that every page can define the "content" block without clashing.
var (
	errorTemplate     = mustParse("templates/layout.html", "templates/error.html")
	signedOutTemplate = mustParse("templates/layout.html", "templates/signed_out.html")
)

func mustParse(files ...string) *template.Template {
	return template.Must(template.New("layout.html").ParseFS(templateFS, files...))
}

// Link is a call to action on a page.
type Link struct {
	Href  string
	Label string
}

// ErrorPage describes a failure in words a user can act on. Every field is
// shown to the user, so none may carry internal detail (causes, tokens, raw
// provider messages): the gateway logs those instead.
type ErrorPage struct {
	Status    int    // HTTP status, shown small for support conversations
	Title     string // short heading, e.g. "You are not assigned to this application"
	Message   string // what happened, in plain words
	Next      string // what the user can do about it
	Code      string // a provider error code (e.g. AADSTS50105), shown next to Message
	Action    *Link  // e.g. "Sign in again"; nil when retrying cannot help
	RequestID string // lets an administrator find the log line
}

// SignedOutPage is shown after sign-out, once Entra has ended its session.
type SignedOutPage struct {
	SignInHref string // where "Sign in again" points
}

// RenderError writes the error page. The caller sets the status code and
// headers before calling it.
func RenderError(w io.Writer, p ErrorPage) error {
	return errorTemplate.Execute(w, pageData{Title: p.Title, Page: p})
}

// RenderSignedOut writes the signed-out page.
func RenderSignedOut(w io.Writer, p SignedOutPage) error {
	return signedOutTemplate.Execute(w, pageData{Title: "You are signed out", Page: p})
}

// pageData is what the layout sees: the document title plus the page.
type pageData struct {
	Title string
	Page  any
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
