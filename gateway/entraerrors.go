package gateway

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Entra reports sign-in failures on the callback as error=<OAuth code> and
// error_description="AADSTS<n>: <English text> Trace ID: ...". The text is
// attacker-controllable (anyone can craft a callback URL), so teamgate
// never shows it: it shows its own explanation chosen by code, plus the
// AADSTS number when it recognises one, so a user can quote it to support.

var aadstsPattern = regexp.MustCompile(`\bAADSTS(\d{4,8})\b`)

// entraProblem is teamgate's explanation of one Entra error.
type entraProblem struct {
	status  int
	title   string
	message string
	next    string
	retry   bool // whether signing in again can help
}

// entraByAADSTS explains the AADSTS codes users actually meet.
var entraByAADSTS = map[string]entraProblem{
	"50105": {http.StatusForbidden, "You are not assigned to this application",
		"Microsoft Entra signed you in, but your account has not been given access to this application.",
		"Ask your administrator to assign you, or a group you belong to, to the teamgate application in Microsoft Entra.", false},
	"65001": {http.StatusForbidden, "The application has not been approved",
		"An administrator has not yet granted consent for this application to sign you in.",
		"Ask your administrator to grant admin consent to the teamgate application in Microsoft Entra.", false},
	"90094": {http.StatusForbidden, "The application has not been approved",
		"This application needs an administrator's approval before you can use it.",
		"Ask your administrator to grant admin consent to the teamgate application in Microsoft Entra.", false},
	"53003": {http.StatusForbidden, "Sign-in blocked by your organisation",
		"A Conditional Access policy of your organisation blocked this sign-in.",
		"Try again from a managed device or network, or contact your administrator.", true},
	"50020": {http.StatusForbidden, "This account cannot sign in here",
		"The account you used belongs to another organisation and is not a member of this one.",
		"Sign in with your work account of this organisation.", true},
	"50076": {http.StatusBadRequest, "More verification is needed",
		"Your organisation requires multi-factor authentication for this sign-in.",
		"Sign in again and complete the verification.", true},
	"50058": {http.StatusBadRequest, "You need to sign in",
		"Microsoft Entra needs you to sign in interactively.",
		"Sign in again.", true},
	"700016": {http.StatusBadGateway, "teamgate is misconfigured",
		"Microsoft Entra does not know teamgate's application (client) id in this tenant.",
		"Contact your administrator: the client id or tenant id in teamgate's configuration is wrong.", false},
	"50011": {http.StatusBadGateway, "teamgate is misconfigured",
		"The redirect address teamgate sent is not registered for the application.",
		"Contact your administrator: the redirect URI must be registered in the app registration.", false},
}

// entraByError explains the OAuth error codes when no AADSTS code is known.
var entraByError = map[string]entraProblem{
	"access_denied": {http.StatusForbidden, "Sign-in was denied",
		"Microsoft Entra did not let you sign in to this application, or the sign-in was cancelled.",
		"Try again. If it keeps failing, contact your administrator.", true},
	"consent_required": entraByAADSTS["65001"],
	"login_required": {http.StatusBadRequest, "You need to sign in",
		"Microsoft Entra needs you to sign in interactively.", "Sign in again.", true},
	"interaction_required": {http.StatusBadRequest, "You need to sign in",
		"Microsoft Entra needs you to complete an extra step to sign in.", "Sign in again.", true},
	"temporarily_unavailable": {http.StatusServiceUnavailable, "Microsoft Entra is unavailable",
		"Microsoft Entra could not complete the sign-in right now.", "Wait a moment and try again.", true},
	"server_error": {http.StatusBadGateway, "Microsoft Entra failed",
		"Microsoft Entra hit an error while signing you in.", "Wait a moment and try again.", true},
	"invalid_request": {http.StatusBadGateway, "teamgate is misconfigured",
		"Microsoft Entra rejected teamgate's sign-in request.",
		"Contact your administrator: check the app registration and teamgate's configuration.", false},
	"unauthorized_client": {http.StatusBadGateway, "teamgate is misconfigured",
		"The application is not allowed to sign users in this way.",
		"Contact your administrator: check the app registration.", false},
	"invalid_client": {http.StatusBadGateway, "teamgate is misconfigured",
		"Microsoft Entra does not recognise teamgate's application credentials.",
		"Contact your administrator: check the client id and secret.", false},
	"invalid_scope": {http.StatusBadGateway, "teamgate is misconfigured",
		"Microsoft Entra rejected the permissions teamgate asked for.",
		"Contact your administrator: check the app registration.", false},
	"unsupported_response_type": {http.StatusBadGateway, "teamgate is misconfigured",
		"Microsoft Entra rejected teamgate's sign-in request.",
		"Contact your administrator: check the app registration.", false},
}

var entraUnknown = entraProblem{http.StatusBadGateway, "Sign-in failed",
	"Microsoft Entra could not sign you in.",
	"Try again. If it keeps failing, contact your administrator and mention the error code and request id.", true}

// entraError turns a callback's error parameters into the answer. retryHref
// restarts sign-in for problems a retry can fix.
func entraError(code, description, retryHref string) *statusError {
	aadsts := ""
	if m := aadstsPattern.FindStringSubmatch(description); m != nil {
		aadsts = m[1]
	}
	p, ok := entraByAADSTS[aadsts]
	if !ok {
		p, ok = entraByError[strings.ToLower(code)]
	}
	if !ok {
		p = entraUnknown
	}
	e := &statusError{
		Status: p.status, Title: p.title, Message: p.message, Next: p.next,
		Cause: fmt.Errorf("entra error %q (AADSTS%s)", sanitizeCode(code), aadsts),
	}
	if aadsts != "" {
		e.Code = "AADSTS" + aadsts
	}
	if p.retry {
		e.Action = signInLink(retryHref)
	}
	return e
}

// sanitizeCode keeps an OAuth error code loggable: [a-z_] only, bounded.
func sanitizeCode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 64; i++ {
		if c := s[i]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
