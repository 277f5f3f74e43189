package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// cookieValue agrees with net/http's r.Cookie on what browsers and
// attackers send.
func TestCookieValueMatchesNetHTTP(t *testing.T) {
	for _, lines := range [][]string{
		{"teamgate_session=abc"},
		{"a=1; teamgate_session=abc; b=2"},
		{"a=1;teamgate_session=abc"},
		{"  teamgate_session=abc  "},
		{`teamgate_session="abc"`},
		{`teamgate_session="abc`},
		{"teamgate_session=a\\bc; teamgate_session=ok"},
		{"teamgate_session=a\"bc", "teamgate_session=second"},
		{"teamgate_session="},
		{"Teamgate_Session=abc"},
		{"teamgate_session_x=abc; xteamgate_session=abc"},
		{"teamgate_session = abc"},
		{"teamgate_session=a b,c"},
		{"teamgate_session=abc=def"},
		{"a=1", "teamgate_session=from-second-line"},
		{";;;teamgate_session=abc;;"},
		{"teamgate_session=\x7fabc", "teamgate_session=\x01"},
		{"teamgate_session", "teamgate_session=later"},
		{"\tteamgate_session\t=abc\v"},
		{"teamgate_session=abc" + strings.Repeat(";", maxCookies)},
		{},
	} {
		r := &http.Request{Header: http.Header{"Cookie": lines}}
		want, err := r.Cookie("teamgate_session")
		got, ok := cookieValue(r.Header, "teamgate_session")
		if (err == nil) != ok || (err == nil && want.Value != got) {
			t.Errorf("%q: cookieValue = %q, %v; net/http says %v, %v", lines, got, ok, want, err)
		}
	}
}

func FuzzCookieValue(f *testing.F) {
	for _, s := range []string{"teamgate_session=abc", `a=1; teamgate_session="x"; b`, "teamgate_session=a\\b; teamgate_session=c", ""} {
		f.Add(s, "teamgate_session")
	}
	f.Fuzz(func(t *testing.T, line, name string) {
		if !isToken(name) {
			return
		}
		r := &http.Request{Header: http.Header{"Cookie": {line}}}
		want, err := r.Cookie(name)
		got, ok := cookieValue(r.Header, name)
		if (err == nil) != ok || (err == nil && want.Value != got) {
			t.Errorf("%q: cookieValue = %q, %v; net/http says %v, %v", line, got, ok, want, err)
		}
	})
}
