package gateway

import (
	"net/url"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSafeRedirect checks properties of the redirect validator, not just
// that it does not panic: whatever it keeps must stay on teamgate's origin
// however a browser reads it, in every decoded spelling.
//
// Seeds: testdata/fuzz/FuzzSafeRedirect plus the open-redirect corpus.
func FuzzSafeRedirect(f *testing.F) {
	for _, p := range loadRedirectCorpusF(f) {
		f.Add(p)
	}
	for _, s := range []string{"/", "/ui/?page=1", "/a/../b", "/%2e%2e/oauth2/start", "/caf%C3%A9", "/x#/y"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://teamgate.example/some/page")
	f.Fuzz(func(t *testing.T, rd string) {
		got := safeRedirect(rd)
		if got != "/" && got != rd {
			t.Fatalf("safeRedirect(%q) = %q: it must return its input or \"/\"", rd, got)
		}
		if safeRedirect(got) != got {
			t.Fatalf("safeRedirect is not idempotent on %q", got)
		}
		// The sign-in link carries exactly the validated value.
		u, err := url.Parse(signInHref(rd))
		if err != nil || u.Query().Get("rd") != got {
			t.Fatalf("signInHref(%q) = %q does not carry %q", rd, signInHref(rd), got)
		}
		if got != rd {
			return // refused: nothing more to check
		}
		if len(rd) > maxRedirectLen {
			t.Fatalf("kept a %d-byte redirect", len(rd))
		}
		// Every spelling a server or browser may decode to must be a path
		// on this origin.
		for i := 0; i < len(rd); i++ {
			if rd[i] >= utf8.RuneSelf {
				t.Fatalf("kept %q, which holds raw non-ASCII (Location headers must be ASCII)", rd)
			}
		}
		s := rd
		for round := 0; round < 5; round++ {
			assertSameOriginPath(t, rd, s, base)
			d, err := url.PathUnescape(s)
			if err != nil || d == s {
				break
			}
			s = d
		}
		// The server decodes the path once; that is what routing sees.
		ref, err := url.Parse(rd)
		if err != nil {
			t.Fatalf("kept %q, which does not parse: %v", rd, err)
		}
		if clean, _ := classifyPath(ref.Path); hasPrefixFold(clean+"/", "/oauth2/") {
			t.Fatalf("kept %q, which leads back into /oauth2/", rd)
		}
	})
}

// assertSameOriginPath fails unless s, read the way a lenient browser reads
// a Location header, is a path on base's origin.
func assertSameOriginPath(t *testing.T, rd, s string, base *url.URL) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == ' ' || c == '\\' {
			t.Fatalf("kept %q: spelling %q holds byte %#x, which browsers strip or reinterpret", rd, s, c)
		}
	}
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		t.Fatalf("kept %q: spelling %q is not a single-slash path", rd, s)
	}
	ref, err := url.Parse(s)
	if err != nil {
		return // a spelling Go cannot parse is not one a browser follows elsewhere either
	}
	abs := base.ResolveReference(ref)
	if abs.Scheme != base.Scheme || abs.Host != base.Host || abs.User != nil {
		t.Fatalf("kept %q: spelling %q resolves to %s", rd, s, abs)
	}
}

// loadRedirectCorpusF reads the open-redirect corpus like
// loadRedirectCorpus, for a fuzz target's seeds.
func loadRedirectCorpusF(f *testing.F) []string {
	f.Helper()
	raw, err := os.ReadFile("testdata/open_redirects.txt")
	if err != nil {
		f.Fatal(err)
	}
	unescape := strings.NewReplacer(`\t`, "\t", `\n`, "\n", `\r`, "\r", `\x00`, "\x00")
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, unescape.Replace(line))
	}
	return out
}
