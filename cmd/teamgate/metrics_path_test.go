package main

import "testing"

// plainPath is a shortcut past normalizeMetricsPath: whatever it takes as
// it is, the normalisation leaves as it is.
func FuzzPlainPath(f *testing.F) {
	for _, p := range []string{"/", "/v1/chat/completions", "/V1", "//x", "/a/./b", "/a/../b", "/a/", `\a`, "a",
		"/.well-known/teamgate/jwks.json", "/oauth2/callback", "/é", "/a..b", "/a/.", "/a/b.c"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if plainPath(p) && normalizeMetricsPath(p) != p {
			t.Errorf("plainPath(%q), but it normalises to %q", p, normalizeMetricsPath(p))
		}
	})
}

func TestPlainPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/v1/chat/completions": true, "/a/b.c": true, "/a..b": true,
		"": false, "a": false, "/V1": false, "//x": false, "/a/./b": false, "/a/../b": false, "/a/": false,
		`/a\b`: false, "/.well-known/x": false, "/é": false,
	} {
		if got := plainPath(p); got != want {
			t.Errorf("plainPath(%q) = %v, want %v", p, got, want)
		}
	}
}
