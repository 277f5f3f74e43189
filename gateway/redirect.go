package gateway

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxRedirectLen bounds rd; a longer value is refused rather than truncated.
// rd travels in the state cookie, which must stay under 4 KiB encrypted.
const maxRedirectLen = 1024

// safeRedirect returns rd when it is a same-origin relative path and "/"
// otherwise. It is deliberately stricter than browsers are lenient: a value
// passes only if it starts with exactly one "/", contains no backslash,
// control character, whitespace or raw non-ASCII byte, has no scheme or
// host, and still satisfies all of that after each round of
// percent-decoding (so "/%2F%2Fevil" and "/%5Cevil" are refused), and does
// not lead back into /oauth2/ (a sign-in landing on sign_out). Browsers
// treat "\" like "/" and ignore tabs and newlines inside URLs, which is how
// "/\evil" and "/\t/evil" become "//evil".
func safeRedirect(rd string) string {
	if isSafeRedirect(rd) {
		return rd
	}
	return "/"
}

func isSafeRedirect(rd string) bool {
	if rd == "" || len(rd) > maxRedirectLen {
		return false
	}
	for i := 0; i < len(rd); i++ {
		if rd[i] >= utf8.RuneSelf {
			return false
		}
	}
	s := rd
	// Decoding repeatedly catches double encoding ("%252F"); three rounds
	// are more than any server in front of us would ever undo.
	for round := 0; round < 4; round++ {
		if !isSafeRedirectForm(s) {
			return false
		}
		decoded, err := url.PathUnescape(s)
		if err != nil {
			return false
		}
		if decoded == s {
			break
		}
		if round == 3 {
			return false // still changing: refuse rather than guess
		}
		s = decoded
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	// Returning into /oauth2/ would restart sign-in or sign straight out.
	if clean, _ := classifyPath(u.Path); hasPrefixFold(clean+"/", "/oauth2/") {
		return false
	}
	return true
}

// isSafeRedirectForm checks one (raw or decoded) spelling of rd.
func isSafeRedirectForm(s string) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	if strings.ContainsRune(s, '\\') {
		return false
	}
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) ||
			r == '\u200b' || r == '\ufeff' {
			return false
		}
	}
	return true
}
