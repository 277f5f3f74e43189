package fakeentra

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
)

// The pages are deliberately plain: semantic HTML, labelled controls, no
// JavaScript except the form_post auto-submit (which has a button fallback),
// so that they work in any browser and are easy to drive from tests.

var pages = template.Must(template.New("layout").Parse(`
{{define "head"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · fake Entra ID</title>
<style>
body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}
fieldset{border:1px solid #8a8886;padding:1rem}
button{display:block;width:100%;text-align:left;margin:.4rem 0;padding:.6rem;font:inherit;cursor:pointer}
.note{color:#605e5c;font-size:.9rem}
</style>
</head>
<body>
<main>
<p class="note">Fake Microsoft Entra ID tenant {{.TenantID}} (for development and tests)</p>
<h1>{{.Title}}</h1>
{{end}}
{{define "foot"}}</main>
</body>
</html>
{{end}}

{{define "picker"}}{{template "head" .}}
{{if .Code}}<p role="alert"><strong>{{.Code}}</strong>: {{.Message}}</p>
{{end}}<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<fieldset>
<legend>Sign in to application {{.ClientID}} as</legend>
{{range .Users}}<button type="submit" name="` + pickUserField + `" value="{{.ID}}" aria-describedby="upn-{{.ID}}">
{{.DisplayName}} <span id="upn-{{.ID}}" class="note">{{.UPN}}{{if not .Assigned}} (not assigned to the app){{end}}{{if .Disabled}} (account disabled){{end}}</span>
</button>
{{else}}<p>The directory has no users.</p>
{{end}}</fieldset>
</form>
{{template "foot" .}}{{end}}

{{define "index"}}{{template "head" .}}
<p>OpenID configuration: <a href="{{.Action}}">{{.Action}}</a></p>
<h2>Users</h2>
<ul>
{{range .Users}}<li>{{.DisplayName}} ({{.UPN}}){{if not .Assigned}}, not assigned to the app{{end}}{{if .Disabled}}, account disabled{{end}}</li>
{{end}}</ul>
{{template "foot" .}}{{end}}

{{define "error"}}{{template "head" .}}
<p role="alert"><strong>{{.Code}}</strong>: {{.Message}}</p>
{{template "foot" .}}{{end}}

{{define "signedout"}}{{template "head" .}}
<p>You have signed out of your account. It is a good idea to close all browser windows.</p>
{{template "foot" .}}{{end}}

{{define "formpost"}}{{template "head" .}}
<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><p>Script is disabled. Continue to the application:</p></noscript>
<button type="submit">Continue</button>
</form>
<script>document.forms[0].submit()</script>
{{template "foot" .}}{{end}}
`))

type hiddenField struct{ Name, Value string }

type pickerUser struct {
	ID, DisplayName, UPN string
	Assigned, Disabled   bool
}

// pageData is what every page template reads; unused fields stay empty.
type pageData struct {
	Title    string
	TenantID string
	ClientID string
	Action   string
	Hidden   []hiddenField
	Users    []pickerUser
	Code     string
	Message  string
}

func (t *Tenant) render(w http.ResponseWriter, status int, name string, data pageData) {
	data.TenantID = t.cfg.TenantID
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "fakeentra: render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderPicker shows the account picker, carrying the authorize parameters
// over in hidden fields so the POST back is a complete authorize request.
// unknown, when not empty, is an account that was asked for and does not
// exist (a mistyped login_hint, a deleted user): like Entra's "this username
// may be incorrect", the page says so (AADSTS50034) and offers the others.
func (t *Tenant) renderPicker(w http.ResponseWriter, ix *dirIndex, action string, form url.Values, unknown string) {
	users := make([]pickerUser, 0, len(ix.dir.Users))
	for i := range ix.dir.Users {
		u := &ix.dir.Users[i]
		name := u.DisplayName
		if name == "" {
			name = u.UPN
		}
		users = append(users, pickerUser{ID: u.ID, DisplayName: name, UPN: u.UPN,
			Assigned: ix.mayUse(u), Disabled: u.Disabled})
	}
	slices.SortStableFunc(users, func(a, b pickerUser) int {
		switch {
		case a.DisplayName < b.DisplayName:
			return -1
		case a.DisplayName > b.DisplayName:
			return 1
		}
		return 0
	})
	data := pageData{
		Title: "Pick an account", ClientID: t.cfg.ClientID, Action: action,
		Hidden: hiddenParams(form), Users: users,
	}
	if unknown != "" {
		data.Code = "AADSTS50034"
		data.Message = fmt.Sprintf("The user account %s does not exist in the '%s' directory. To sign into this application, the account must be added to the directory.", unknown, t.cfg.TenantID)
	}
	t.render(w, http.StatusOK, "picker", data)
}

// renderIndex is the tenant's home page, for people who open the fake's URL
// while running `teamgate dev`.
func (t *Tenant) renderIndex(w http.ResponseWriter) {
	ix := t.snapshot()
	users := make([]pickerUser, 0, len(ix.dir.Users))
	for i := range ix.dir.Users {
		u := &ix.dir.Users[i]
		users = append(users, pickerUser{ID: u.ID, DisplayName: u.DisplayName, UPN: u.UPN,
			Assigned: ix.mayUse(u), Disabled: u.Disabled})
	}
	t.render(w, http.StatusOK, "index", pageData{
		Title: "Fake Entra ID tenant", Action: t.Issuer() + "/.well-known/openid-configuration", Users: users,
	})
}

// renderError is Entra's "Sorry, but we're having trouble signing you in"
// page, shown when the client or redirect URI cannot be trusted.
func (t *Tenant) renderError(w http.ResponseWriter, status int, code, msg string) {
	t.render(w, status, "error", pageData{Title: "Sorry, but we're having trouble signing you in", Code: code, Message: msg})
}

func (t *Tenant) renderSignedOut(w http.ResponseWriter) {
	t.render(w, http.StatusOK, "signedout", pageData{Title: "You signed out of your account"})
}

// renderFormPost delivers the authorize answer for response_mode=form_post.
func (t *Tenant) renderFormPost(w http.ResponseWriter, action string, params url.Values) {
	t.render(w, http.StatusOK, "formpost", pageData{Title: "Continue", Action: action, Hidden: hiddenParams(params)})
}
