package gateway

import (
	"net/http"
	"path"
	"strings"
)

// reservedPrefixes are the paths teamgate answers itself; everything else is
// proxied. Each is matched with and without its trailing slash.
var reservedPrefixes = []string{"/oauth2/", "/teamgate/", "/.well-known/teamgate/"}

// classifyPath decides whether teamgate or the upstream answers a path. The
// decision is made on a normalised form (backslashes as slashes, repeated
// slashes and dot segments removed, prefix compared case-insensitively;
// net/http has already percent-decoded the path), so that spellings such as
// "//teamgate/api", "/Teamgate/api", "/%74eamgate/api" or
// "/x/../teamgate/api" are handled by teamgate and never reach the upstream.
// clean is the normalised path that teamgate should route on.
func classifyPath(p string) (clean string, reserved bool) {
	clean = p
	if needsCleaning(p) {
		clean = path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
	}
	for _, prefix := range reservedPrefixes {
		if hasPrefixFold(clean, prefix) || strings.EqualFold(clean, prefix[:len(prefix)-1]) {
			return clean, true
		}
	}
	return clean, false
}

// needsCleaning is a cheap pre-check so that the common, already-clean path
// costs no allocation.
func needsCleaning(p string) bool {
	if p == "" || p[0] != '/' {
		return true
	}
	if strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") || strings.ContainsRune(p, '\\') {
		return true
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// withPath returns a shallow copy of r routed on p.
func withPath(r *http.Request, p string) *http.Request {
	r2 := *r
	u := *r.URL
	u.Path = p
	u.RawPath = ""
	r2.URL = &u
	return &r2
}
