package gateway

import (
	"fmt"
	"strings"
)

// Cookie name prefixes (RFC 6265bis, "Cookie Name Prefixes"): a browser
// keeps a cookie named __Secure-… only when it is set with Secure, and one
// named __Host-… only with Secure, Path=/ and no Domain. A __Host- session
// cookie cannot be overwritten from a sibling subdomain (cookie tossing),
// so operators may name theirs so. Browsers match the prefixes without
// regard to case since 2024; teamgate's configuration accepts only the
// exact spelling (Config.Validate), but the code below folds case too, so
// that whatever name it is given, the cookies it sets stay acceptable.
const (
	hostCookiePrefix   = "__Host-"
	secureCookiePrefix = "__Secure-"
)

// cookieNamePrefix returns the prefix of name that browsers enforce
// (hostCookiePrefix or secureCookiePrefix, in that canonical spelling),
// or "" when name has none. The comparison ignores case, as browsers do.
func cookieNamePrefix(name string) string {
	switch {
	case hasPrefixFold(name, hostCookiePrefix):
		return hostCookiePrefix
	case hasPrefixFold(name, secureCookiePrefix):
		return secureCookiePrefix
	}
	return ""
}

// cookieSecure is the Secure attribute of a cookie called name: what the
// public URL asks for, and always true for a prefixed name, which a browser
// would drop otherwise.
func cookieSecure(name string, secure bool) bool {
	return secure || cookieNamePrefix(name) != ""
}

// stateCookieNamePrefix is how the sign-in state cookies of a session
// cookie called sessionName are named: sessionName + "_state_", except that
// a __Host- name becomes __Secure-. The state cookies are scoped to
// /oauth2/ (so that they never reach the upstream), which a __Host- cookie
// may not be; __Secure- allows the path and still demands Secure.
func stateCookieNamePrefix(sessionName string) string {
	if cookieNamePrefix(sessionName) == hostCookiePrefix {
		return secureCookiePrefix + sessionName[len(hostCookiePrefix):] + "_state_"
	}
	return sessionName + "_state_"
}

// validateCookieName checks the prefix rules of session.cookie_name against
// the public URL; it returns "" when they hold, else the reason.
func validateCookieName(name, publicURL string) string {
	p := cookieNamePrefix(name)
	switch {
	case p == "":
		return ""
	case !strings.HasPrefix(name, p):
		return fmt.Sprintf("must spell the prefix exactly %q (got %q): browsers read %q as %q and enforce its rules",
			p, name, name[:len(p)], p)
	case !hasPrefixFold(publicURL, "https://"):
		rules := "the Secure attribute"
		if p == hostCookiePrefix {
			rules = "the Secure attribute, Path=/ and no Domain"
		}
		return fmt.Sprintf("a name starting with %q needs an https server.public_url (got %q): browsers accept such a cookie only with %s, and teamgate marks cookies Secure only on https",
			p, publicURL, rules)
	}
	return ""
}
