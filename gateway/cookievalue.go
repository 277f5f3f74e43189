package gateway

import (
	"net/http"
	"strings"
)

// maxCookies is net/http's default limit: a request with more cookies than
// this has none (it is a denial-of-service guard).
const maxCookies = 3000

// cookieValue returns the value of the first valid cookie called name in
// the request's Cookie headers, as r.Cookie(name).Value would (with
// net/http's default GODEBUG settings), without parsing and allocating
// every other cookie the browser sends: it runs on every proxied request.
func cookieValue(h http.Header, name string) (string, bool) {
	lines := h["Cookie"]
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > maxCookies {
		return "", false
	}
	for _, line := range lines {
		line = trimASCIISpace(line)
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(trimASCIISpace(part), "=")
			if trimASCIISpace(k) != name {
				continue
			}
			if v, ok := cookieValueOK(v); ok {
				return v, true
			}
		}
	}
	return "", false
}

// cookieValueOK applies net/http's rules for a cookie value: optional
// surrounding double quotes, and only the bytes RFC 6265 allows plus space
// and comma, as net/http does.
func cookieValueOK(v string) (string, bool) {
	if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return "", false
		}
	}
	return v, true
}

// trimASCIISpace trims what net/textproto.TrimString trims.
func trimASCIISpace(s string) string {
	for len(s) > 0 && isASCIISpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isASCIISpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isASCIISpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
