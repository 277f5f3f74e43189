package fakeentra

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	tokenLifetime   = 3599 * time.Second // access token, as expires_in says
	idTokenLifetime = time.Hour
	refreshLifetime = 90 * 24 * time.Hour // sliding, like Entra's
)

// refreshGrant is what a refresh token stands for. Entra's refresh tokens
// are not single-use: redeeming one returns a new one and the old one stays
// valid until it expires, which we reproduce.
type refreshGrant struct {
	clientID string
	userID   string
	scopes   []string
	expires  time.Time
}

// serveToken implements /oauth2/v2.0/token.
func (t *Tenant) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests. Received a GET request.")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body could not be parsed.")
		return
	}
	if !t.authenticateClient(w, r) {
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		t.grantAuthorizationCode(w, r)
	case "refresh_token":
		t.grantRefreshToken(w, r)
	case "client_credentials":
		t.grantClientCredentials(w, r)
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt))
	}
}

// authenticateClient checks the client id and secret, from the form body
// (client_secret_post) or HTTP Basic (client_secret_basic, whose parts are
// form-url-encoded per RFC 6749 §2.3.1).
func (t *Tenant) authenticateClient(w http.ResponseWriter, r *http.Request) bool {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(bid)
		secret, _ = url.QueryUnescape(bsecret)
	}
	switch {
	case id == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
	case id != t.cfg.ClientID:
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", id, t.cfg.TenantID))
	case secret == "":
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	case subtle.ConstantTimeCompare([]byte(secret), []byte(t.cfg.ClientSecret)) != 1:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
	default:
		return true
	}
	return false
}

func (t *Tenant) grantAuthorizationCode(w http.ResponseWriter, r *http.Request) {
	code := r.PostForm.Get("code")
	if code == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'code'.")
		return
	}
	t.mu.Lock()
	ac := t.codes[code]
	var redeemed bool
	if ac != nil {
		// Any redemption attempt by the right client burns the code, so a
		// code intercepted and tried with a guessed verifier is useless.
		redeemed, ac.redeemed = ac.redeemed, true
	}
	t.mu.Unlock()
	now := t.now()
	switch {
	case ac == nil:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
		return
	case redeemed:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
		return
	case now.Sub(ac.issuedAt) > codeLifetime:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
		return
	case r.PostForm.Get("redirect_uri") != ac.redirectURI:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 500112,
			fmt.Sprintf("The reply address '%s' does not match the reply address '%s' provided when requesting Authorization code.", r.PostForm.Get("redirect_uri"), ac.redirectURI))
		return
	case !pkceMatches(r.PostForm.Get("code_verifier"), ac.codeChallenge):
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
		return
	}
	u := t.snapshot().user(ac.userID)
	if !userCanSignIn(w, u) {
		return
	}
	t.issueUserTokens(w, u, ac.scopes, ac.nonce)
}

// userCanSignIn answers a user grant for an account that was deleted
// (AADSTS50034) or disabled (AADSTS50057) since the code or refresh token was
// issued, as Entra does, and reports whether the grant may go on.
func userCanSignIn(w http.ResponseWriter, u *User) bool {
	switch {
	case u == nil:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 50034, "The user account does not exist in the directory.")
		return false
	case u.Disabled:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 50057, "The user account is disabled.")
		return false
	}
	return true
}

// pkceMatches checks an S256 verifier against its challenge (RFC 7636).
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

func (t *Tenant) grantRefreshToken(w http.ResponseWriter, r *http.Request) {
	rt := r.PostForm.Get("refresh_token")
	t.mu.Lock()
	g := t.refresh[rt]
	t.mu.Unlock()
	now := t.now()
	switch {
	case rt == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'.")
		return
	case g == nil || g.clientID != t.cfg.ClientID:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
		return
	case now.After(g.expires):
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 700082, "The refresh token has expired due to inactivity.")
		return
	}
	ix := t.snapshot()
	u := ix.user(g.userID)
	if !userCanSignIn(w, u) {
		return
	}
	if !ix.mayUse(u) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 50105, "The signed in user is not assigned to a role for the application.")
		return
	}
	scopes := g.scopes
	if s := strings.Fields(r.PostForm.Get("scope")); len(s) > 0 {
		scopes = s
	}
	t.issueUserTokens(w, u, scopes, "")
}

// grantClientCredentials issues an app-only Graph token whose roles are the
// application permissions granted right now.
func (t *Tenant) grantClientCredentials(w http.ResponseWriter, r *http.Request) {
	scope := r.PostForm.Get("scope")
	want := t.GraphURL() + "/.default"
	switch {
	case scope == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
		return
	case !strings.HasSuffix(scope, "/.default") || strings.Contains(scope, " "):
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", 1002012,
			fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope))
		return
	case scope != want:
		writeOAuthError(w, http.StatusBadRequest, "invalid_resource", 500011,
			fmt.Sprintf("The resource principal named %s was not found in the tenant named %s.", strings.TrimSuffix(scope, "/.default"), t.cfg.TenantID))
		return
	}
	now := t.now()
	at, err := t.currentKey().sign(map[string]any{
		"aud": t.GraphURL(), "iss": t.Issuer(), "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(tokenLifetime).Unix(), "tid": t.cfg.TenantID, "oid": t.cfg.ServicePrincipalID,
		"sub": t.cfg.ServicePrincipalID, "appid": t.cfg.ClientID, "azp": t.cfg.ClientID, "idtyp": "app",
		"roles": t.appPermissions(), "uti": randomToken(16), "ver": "1.0",
	})
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", 90033, "A transient error has occurred.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": int(tokenLifetime.Seconds()), "ext_expires_in": int(tokenLifetime.Seconds()),
		"access_token": at,
	})
}

// issueUserTokens answers a user grant: a delegated Graph access token, an
// ID token when openid was asked for, and a refresh token when
// offline_access was (as Entra does).
func (t *Tenant) issueUserTokens(w http.ResponseWriter, u *User, scopes []string, nonce string) {
	now := t.now()
	scp := delegatedScopes(scopes, t.GraphURL())
	key := t.currentKey()
	at, err := key.sign(map[string]any{
		"aud": t.GraphURL(), "iss": t.Issuer(), "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(tokenLifetime).Unix(), "tid": t.cfg.TenantID, "oid": u.ID, "sub": t.pairwiseSub(u.ID),
		"appid": t.cfg.ClientID, "azp": t.cfg.ClientID, "idtyp": "user", "scp": strings.Join(scp, " "),
		"upn": u.UPN, "name": u.DisplayName, "uti": randomToken(16), "ver": "1.0",
	})
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", 90033, "A transient error has occurred.")
		return
	}
	granted := slices.Clone(scp)
	resp := map[string]any{
		"token_type": "Bearer", "expires_in": int(tokenLifetime.Seconds()), "ext_expires_in": int(tokenLifetime.Seconds()),
		"access_token": at,
	}
	if slices.Contains(scopes, "openid") {
		claims := t.idTokenClaims(u, nonce, now)
		if resp["id_token"], err = key.sign(claims); err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error", 90033, "A transient error has occurred.")
			return
		}
		granted = append(granted, "openid")
	}
	for _, s := range []string{"profile", "email"} {
		if slices.Contains(scopes, s) {
			granted = append(granted, s)
		}
	}
	if slices.Contains(scopes, "offline_access") {
		rt := randomToken(64)
		t.mu.Lock()
		t.refresh[rt] = &refreshGrant{clientID: t.cfg.ClientID, userID: u.ID, scopes: scopes, expires: now.Add(refreshLifetime)}
		t.mu.Unlock()
		resp["refresh_token"] = rt
		granted = append(granted, "offline_access")
	}
	resp["scope"] = strings.Join(granted, " ")
	writeJSON(w, http.StatusOK, resp)
}

// idTokenClaims builds a v2.0 ID token for u. email is present only when
// the user has a mailbox, as in Entra.
func (t *Tenant) idTokenClaims(u *User, nonce string, now time.Time) map[string]any {
	c := map[string]any{
		"iss": t.Issuer(), "aud": t.cfg.ClientID, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(idTokenLifetime).Unix(), "sub": t.pairwiseSub(u.ID), "oid": u.ID,
		"tid": t.cfg.TenantID, "preferred_username": u.UPN, "name": u.DisplayName,
		"ver": "2.0", "uti": randomToken(16),
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	if u.Mail != "" {
		c["email"] = u.Mail
	}
	return c
}

// pairwiseSub is the app-specific subject: stable for a user and app, and
// deliberately different from the oid so that relying parties that key on
// sub instead of oid are caught.
func (t *Tenant) pairwiseSub(oid string) string {
	h := sha256.Sum256([]byte("sub\x00" + t.cfg.TenantID + "\x00" + t.cfg.ClientID + "\x00" + strings.ToLower(oid)))
	return base64.RawURLEncoding.EncodeToString(h[:])[:43]
}

// delegatedScopes turns requested scopes into the Graph permissions of a
// delegated token: OIDC scopes are dropped, resource prefixes are stripped,
// and User.Read is always present (Entra's default for a Graph token).
func delegatedScopes(scopes []string, graphURL string) []string {
	out := []string{"User.Read"}
	for _, s := range scopes {
		switch s {
		case "openid", "profile", "email", "offline_access":
			continue
		}
		s = strings.TrimPrefix(s, graphURL+"/")
		s = strings.TrimPrefix(s, "https://graph.microsoft.com/")
		if s != ".default" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
