package gateway

import "testing"

func TestClassifyPath(t *testing.T) {
	tests := []struct {
		name         string
		path         string
		wantReserved bool
		wantClean    string
	}{
		{"proxied root", "/", false, "/"},
		{"proxied api", "/v1/chat/completions", false, "/v1/chat/completions"},
		{"proxied lookalike", "/teamgatex/api", false, "/teamgatex/api"},
		{"proxied lookalike oauth", "/oauth2x/start", false, "/oauth2x/start"},
		{"proxied prefix inside", "/ui/teamgate/api", false, "/ui/teamgate/api"},
		{"start", "/oauth2/start", true, "/oauth2/start"},
		{"bare oauth2", "/oauth2", true, "/oauth2"},
		{"bare teamgate", "/teamgate", true, "/teamgate"},
		{"well-known", "/.well-known/teamgate/jwks.json", true, "/.well-known/teamgate/jwks.json"},
		{"admin api", "/teamgate/api/teams", true, "/teamgate/api/teams"},
		{"double slash", "//teamgate/api/teams", true, "/teamgate/api/teams"},
		{"many slashes", "///teamgate//api/teams", true, "/teamgate/api/teams"},
		{"upper case", "/Teamgate/api/teams", true, "/Teamgate/api/teams"},
		{"all caps", "/TEAMGATE/API/TEAMS", true, "/TEAMGATE/API/TEAMS"},
		{"decoded percent (net/http decodes %74)", "/teamgate/api/teams", true, "/teamgate/api/teams"},
		{"dot segment", "/x/../teamgate/api/teams", true, "/teamgate/api/teams"},
		{"dot", "/./teamgate/api", true, "/teamgate/api"},
		{"backslashes", `/teamgate\api\teams`, true, "/teamgate/api/teams"},
		{"leading backslash", `\teamgate/api`, true, "/teamgate/api"},
		{"escape above root", "/../../teamgate/healthz", true, "/teamgate/healthz"},
		{"oauth2 dot segment", "/v1/../oauth2/sign_out", true, "/oauth2/sign_out"},
		{"well-known upper", "/.Well-Known/Teamgate/x", true, "/.Well-Known/Teamgate/x"},
		{"well-known other", "/.well-known/openid-configuration", false, "/.well-known/openid-configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clean, reserved := classifyPath(tt.path)
			if reserved != tt.wantReserved {
				t.Errorf("classifyPath(%q) reserved = %v, want %v", tt.path, reserved, tt.wantReserved)
			}
			if clean != tt.wantClean {
				t.Errorf("classifyPath(%q) clean = %q, want %q", tt.path, clean, tt.wantClean)
			}
		})
	}
}

func TestClassifyPathCleanPathDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { classifyPath("/v1/chat/completions") })
	if allocs != 0 {
		t.Errorf("classifyPath allocates %v times for a clean path, want 0", allocs)
	}
}
