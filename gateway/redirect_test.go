package gateway

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// loadRedirectCorpus reads testdata/open_redirects.txt, decoding the escapes
// \t, \n, \r and \x00 so that control characters can be listed.
func loadRedirectCorpus(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("testdata/open_redirects.txt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	unescape := strings.NewReplacer(`\t`, "\t", `\n`, "\n", `\r`, "\r", `\x00`, "\x00")
	var payloads []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		payloads = append(payloads, unescape.Replace(line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return payloads
}

func TestSafeRedirectRefusesOpenRedirectCorpus(t *testing.T) {
	payloads := loadRedirectCorpus(t)
	if len(payloads) < 40 {
		t.Fatalf("corpus has %d payloads, want at least 40", len(payloads))
	}
	for _, p := range payloads {
		t.Run(p, func(t *testing.T) {
			if got := safeRedirect(p); got != "/" {
				t.Errorf("safeRedirect(%q) = %q, want \"/\"", p, got)
			}
		})
	}
}

func TestSafeRedirectKeepsSameOriginPaths(t *testing.T) {
	tests := []struct {
		name string
		rd   string
	}{
		{"root", "/"},
		{"page", "/ui/"},
		{"nested", "/ui/teams/123"},
		{"query", "/v1/models?limit=10&order=desc"},
		{"fragment", "/ui/#/keys"},
		{"encoded query value", "/search?q=a%26b"},
		{"encoded unicode", "/caf%C3%A9"},
		{"dot segments stay on this origin", "/a/../b"},
		{"at sign in path", "/@user"},
		{"colon later in path", "/a:b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := safeRedirect(tt.rd); got != tt.rd {
				t.Errorf("safeRedirect(%q) = %q, want it unchanged", tt.rd, got)
			}
		})
	}
}

func TestSafeRedirectBoundsLength(t *testing.T) {
	long := "/" + strings.Repeat("a", maxRedirectLen)
	if got := safeRedirect(long); got != "/" {
		t.Errorf("an over-long rd was kept")
	}
}

func TestSignInHrefRoundTrips(t *testing.T) {
	tests := []struct {
		name, rd, want string
	}{
		{"plain", "/ui/?x=1", "/oauth2/start?rd=%2Fui%2F%3Fx%3D1"},
		{"refused", "//evil.example", "/oauth2/start?rd=%2F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := signInHref(tt.rd); got != tt.want {
				t.Errorf("signInHref(%q) = %q, want %q", tt.rd, got, tt.want)
			}
		})
	}
}
