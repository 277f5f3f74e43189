package fakeentra

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// codeLifetime is how long an authorization code can be redeemed (Entra:
// about 10 minutes).
const codeLifetime = 10 * time.Minute

// pickUserField is the form field of the account picker.
const pickUserField = "fakeentra_user"

// authCode is an issued authorization code awaiting redemption.
type authCode struct {
	clientID      string
	redirectURI   string
	codeChallenge string
	nonce         string
	scopes        []string
	userID        string
	issuedAt      time.Time
	redeemed      bool
}

// authRequest is a parsed authorize request.
type authRequest struct {
	form         url.Values
	clientID     string
	redirectURI  string
	responseMode string
	state        string
}

// serveAuthorize implements /oauth2/v2.0/authorize. Problems with the client
// or redirect URI get an error page (Entra does not redirect to an
// unverified URI); everything else is reported to the client by redirect.
// A login_hint naming a user signs them in at once (the non-interactive path
// for tests); otherwise an account picker is shown, which posts back here.
func (t *Tenant) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		t.renderError(w, http.StatusBadRequest, "AADSTS900144", "The request could not be parsed.")
		return
	}
	req := authRequest{
		form:         r.Form,
		clientID:     r.Form.Get("client_id"),
		redirectURI:  r.Form.Get("redirect_uri"),
		responseMode: r.Form.Get("response_mode"),
		state:        r.Form.Get("state"),
	}
	switch {
	case req.clientID == "":
		t.renderError(w, http.StatusBadRequest, "AADSTS900144", "The request body must contain the following parameter: 'client_id'.")
		return
	case req.clientID != t.cfg.ClientID:
		t.renderError(w, http.StatusBadRequest, "AADSTS700016",
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", req.clientID, t.cfg.TenantID))
		return
	case req.redirectURI == "" || !redirectAllowed(t.cfg.RedirectURIs, req.redirectURI):
		t.renderError(w, http.StatusBadRequest, "AADSTS50011",
			fmt.Sprintf("The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'.", req.redirectURI, t.cfg.ClientID))
		return
	}
	if req.responseMode == "" {
		req.responseMode = "query"
	}
	if req.responseMode != "query" && req.responseMode != "form_post" {
		req.responseMode = "query"
		t.authError(w, r, req, "invalid_request", "AADSTS900144: response_mode must be 'query' or 'form_post' for the code flow.")
		return
	}
	if rt := r.Form.Get("response_type"); rt != "code" {
		t.authError(w, r, req, "unsupported_response_type",
			fmt.Sprintf("AADSTS700051: response_type '%s' is not enabled for the application.", rt))
		return
	}
	scopes := strings.Fields(r.Form.Get("scope"))
	if len(scopes) == 0 {
		t.authError(w, r, req, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'scope'.")
		return
	}
	challenge, method := r.Form.Get("code_challenge"), r.Form.Get("code_challenge_method")
	switch {
	case challenge == "":
		t.authError(w, r, req, "invalid_request", "AADSTS9002325: Proof Key for Code Exchange is required for this application.")
		return
	case method != "S256":
		t.authError(w, r, req, "invalid_request", "AADSTS501491: Invalid code_challenge_method; this application accepts only S256.")
		return
	case len(challenge) != 43:
		t.authError(w, r, req, "invalid_request", "AADSTS501491: Invalid size of Code_Challenge parameter.")
		return
	}

	ix := t.snapshot()
	var user *User
	var asked string // the account named by the pick or the hint
	switch picked := r.Form.Get(pickUserField); {
	case r.Method == http.MethodPost && picked != "":
		asked = picked
	case r.Form.Get("prompt") == "login" || r.Form.Get("prompt") == "select_account":
		// Force the picker, as Entra forces credential entry.
	case r.Form.Get("login_hint") != "":
		asked = r.Form.Get("login_hint")
	}
	if asked != "" {
		user = ix.user(asked)
	}
	if user == nil {
		if r.Form.Get("prompt") == "none" {
			t.authError(w, r, req, "login_required", "AADSTS50058: A silent sign-in request was sent but no user is signed in.")
			return
		}
		t.renderPicker(w, ix, r.URL.Path, req.form, asked)
		return
	}
	if user.Disabled {
		// Entra stops a disabled account on its own sign-in page; only a
		// silent request, which cannot show a page, goes back to the client.
		const msg = "AADSTS50057: The user account is disabled."
		if r.Form.Get("prompt") == "none" {
			t.authError(w, r, req, "interaction_required", msg)
			return
		}
		t.renderError(w, http.StatusBadRequest, "AADSTS50057", "The user account is disabled. Contact your administrator to enable it.")
		return
	}
	if !ix.mayUse(user) {
		t.authError(w, r, req, "access_denied", fmt.Sprintf(
			"AADSTS50105: Your administrator has configured the application ('%s') to block users unless they are specifically granted ('assigned') access to the application. The signed in user '%s' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator.",
			t.cfg.ClientID, user.UPN))
		return
	}
	code := randomToken(48)
	t.mu.Lock()
	for c, ac := range t.codes { // keep a long-running dev tenant small
		if t.now().Sub(ac.issuedAt) > 2*codeLifetime {
			delete(t.codes, c)
		}
	}
	t.codes[code] = &authCode{
		clientID:      req.clientID,
		redirectURI:   req.redirectURI,
		codeChallenge: challenge,
		nonce:         r.Form.Get("nonce"),
		scopes:        scopes,
		userID:        user.ID,
		issuedAt:      t.now(),
	}
	t.mu.Unlock()
	t.authRespond(w, r, req, url.Values{"code": {code}})
}

// authError reports an authorize failure to the client by redirect.
func (t *Tenant) authError(w http.ResponseWriter, r *http.Request, req authRequest, code, desc string) {
	t.authRespond(w, r, req, url.Values{"error": {code}, "error_description": {desc}})
}

// authRespond sends params (plus state) to the redirect URI, by query
// redirect or by an auto-submitting form for response_mode=form_post.
func (t *Tenant) authRespond(w http.ResponseWriter, _ *http.Request, req authRequest, params url.Values) {
	if req.state != "" {
		params.Set("state", req.state)
	}
	if req.responseMode == "form_post" {
		t.renderFormPost(w, req.redirectURI, params)
		return
	}
	u, _ := url.Parse(req.redirectURI) // validated by redirectAllowed
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

// serveLogout implements /oauth2/v2.0/logout: back to a registered
// post_logout_redirect_uri (with state), or a signed-out page.
func (t *Tenant) serveLogout(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	target := r.Form.Get("post_logout_redirect_uri")
	if target == "" || !redirectAllowed(t.cfg.PostLogoutRedirectURIs, target) {
		t.renderSignedOut(w)
		return
	}
	u, _ := url.Parse(target)
	if st := r.Form.Get("state"); st != "" {
		q := u.Query()
		q.Set("state", st)
		u.RawQuery = q.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

// hiddenParams lists the authorize parameters the picker carries over, in a
// stable order, without a previous pick.
func hiddenParams(form url.Values) []hiddenField {
	keys := make([]string, 0, len(form))
	for k := range form {
		if k != pickUserField {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []hiddenField
	for _, k := range keys {
		for _, v := range form[k] {
			out = append(out, hiddenField{Name: k, Value: v})
		}
	}
	return out
}
