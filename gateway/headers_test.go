package gateway

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func defaultIdentityHeaders(t *testing.T) identityHeaders {
	t.Helper()
	var cfg Config
	cfg.ApplyDefaults()
	return newIdentityHeaders(cfg.Upstream.Headers)
}

func TestIdentityHeadersStripSpoofVariants(t *testing.T) {
	ih := defaultIdentityHeaders(t)
	spoofs := []string{
		"X-Forwarded-User", "x-forwarded-user", "X-FORWARDED-USER", "x_forwarded_user",
		"X_Forwarded-User", "X-Forwarded_User", "X_FORWARDED_USER", "x-fORWARDED-uSER",
		"X-Forwarded-Email", "x_forwarded_email", "X-FORWARDED-EMAIL",
		"X-Forwarded-Preferred-Username", "x_forwarded_preferred_username", "X-Forwarded-Preferred_Username",
		"X-Forwarded-Groups", "x_forwarded_groups", "X-FORWARDED-GROUPS",
		"X-LiteLLM-Team-Id", "X-Litellm-Team-Id", "x_litellm_team_id", "X_LITELLM_TEAM_ID", "x-litellm-team_id",
	}
	keep := []string{
		"X-Forwarded-Users", "X-Forwarded-User2", "Forwarded-User", "X-Forwarded-For", "Authorization",
		"X-Forwarded--User", "XForwardedUser", "X-Forwarded-Team-Id", "X-LiteLLM-Team",
	}
	for _, name := range spoofs {
		t.Run("strip "+name, func(t *testing.T) {
			h := http.Header{}
			h[name] = []string{"spoofed"}
			for _, k := range keep {
				h[k] = []string{"kept"}
			}
			ih.strip(h)
			if _, ok := h[name]; ok {
				t.Errorf("%q survived stripping", name)
			}
			for _, k := range keep {
				if h[k] == nil {
					t.Errorf("unrelated header %q was stripped", k)
				}
			}
		})
	}
}

func TestIdentityHeadersStripConfiguredNames(t *testing.T) {
	var cfg Config
	cfg.ApplyDefaults()
	cfg.Upstream.Headers.User = "X_Remote_User"
	ih := newIdentityHeaders(cfg.Upstream.Headers)
	h := http.Header{"X-Remote-User": {"a"}, "x_remote_user": {"b"}, "X-Forwarded-User": {"c"}}
	ih.strip(h)
	if len(h["X-Remote-User"])+len(h["x_remote_user"]) != 0 {
		t.Errorf("configured header not stripped in every spelling: %v", h)
	}
	if h.Get("X-Forwarded-User") != "c" {
		t.Errorf("a header that is no longer an identity header was stripped")
	}
}

func TestSameNormalizedHeaderDoesNotAllocate(t *testing.T) {
	ih := defaultIdentityHeaders(t)
	allocs := testing.AllocsPerRun(100, func() { ih.owns("X_Forwarded-User") })
	if allocs != 0 {
		t.Errorf("owns allocates %v times, want 0", allocs)
	}
}

func TestInject(t *testing.T) {
	ih := defaultIdentityHeaders(t)
	tests := []struct {
		name string
		p    principalEntry
		team string
		want http.Header
	}{
		{
			name: "full",
			p:    principalEntry{principal: Principal{UserID: "u1"}, email: "a@example.com", upn: "a@example.com", groups: "t1,t2"},
			team: "t1",
			want: http.Header{"X-Forwarded-User": {"u1"}, "X-Forwarded-Email": {"a@example.com"},
				"X-Forwarded-Preferred-Username": {"a@example.com"}, "X-Forwarded-Groups": {"t1,t2"}, "X-Litellm-Team-Id": {"t1"}},
		},
		{
			name: "no email, no teams",
			p:    principalEntry{principal: Principal{UserID: "u2"}, upn: "b@example.com"},
			want: http.Header{"X-Forwarded-User": {"u2"}, "X-Forwarded-Preferred-Username": {"b@example.com"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			ih.inject(h, &tt.p, tt.team, new(identityValues))
			if len(h) != len(tt.want) {
				t.Errorf("injected %v, want %v", h, tt.want)
			}
			for k, v := range tt.want {
				if !slices.Equal(h[k], v) {
					t.Errorf("%s = %q, want %q", k, h[k], v)
				}
			}
		})
	}
}

func teams(ids ...string) []TeamRef {
	out := make([]TeamRef, len(ids))
	for i, id := range ids {
		out[i] = TeamRef{ID: id, Alias: "alias-" + id}
	}
	return out
}

func TestGroupsHeader(t *testing.T) {
	tests := []struct {
		name  string
		teams []TeamRef
		max   int
		want  string
	}{
		{"none", nil, 100, ""},
		{"one", teams("aaaa"), 100, "aaaa"},
		{"all fit exactly", teams("aaaa", "bbbb"), 9, "aaaa,bbbb"},
		{"second would be cut: dropped whole", teams("aaaa", "bbbb"), 8, "aaaa"},
		{"first too long: nothing", teams("aaaaaaaaaa"), 5, ""},
		{"stops at the first that does not fit", teams("aa", "bbbbbbbb", "cc"), 6, "aa"},
		{"skips unsendable ids", []TeamRef{{ID: "a,b"}, {ID: "x\ny"}, {ID: ""}, {ID: "ok"}}, 100, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := groupsHeader(tt.teams, tt.max)
			if got != tt.want {
				t.Errorf("groupsHeader = %q, want %q", got, tt.want)
			}
			if len(got) > tt.max {
				t.Errorf("len %d exceeds max %d", len(got), tt.max)
			}
		})
	}
}

func TestGroupsHeaderCapsManyGUIDs(t *testing.T) {
	var ts []TeamRef
	for i := 0; i < 250; i++ {
		ts = append(ts, TeamRef{ID: strings.Repeat(string(rune('a'+i%26)), 8) + "-0000-0000-0000-000000000000"})
	}
	got := groupsHeader(ts, DefaultGroupsMaxBytes)
	if len(got) > DefaultGroupsMaxBytes {
		t.Fatalf("len %d > %d", len(got), DefaultGroupsMaxBytes)
	}
	for _, id := range strings.Split(got, ",") {
		if len(id) != 36 {
			t.Fatalf("partial id %q in header", id)
		}
	}
	if n := strings.Count(got, ",") + 1; n != DefaultGroupsMaxBytes/37 {
		t.Errorf("kept %d ids, want %d", n, DefaultGroupsMaxBytes/37)
	}
}

func TestSelectTeam(t *testing.T) {
	member := &principalEntry{principal: Principal{UserID: "u", Teams: teams("t-a", "t-b")}}
	loner := &principalEntry{principal: Principal{UserID: "u"}}
	tests := []struct {
		name       string
		p          *principalEntry
		requested  []string
		want       string
		wantStatus int
	}{
		{"default is first by alias", member, nil, "t-a", 0},
		{"own team kept", member, []string{"t-b"}, "t-b", 0},
		{"own team with spaces", member, []string{" t-b "}, "t-b", 0},
		{"empty value means default", member, []string{""}, "t-a", 0},
		{"foreign team refused", member, []string{"t-x"}, "", http.StatusForbidden},
		{"case differs: refused", member, []string{"T-A"}, "", http.StatusForbidden},
		{"same team twice is fine", member, []string{"t-b", "t-b"}, "t-b", 0},
		{"two different teams", member, []string{"t-a", "t-b"}, "", http.StatusBadRequest},
		{"no team, none asked", loner, nil, "", 0},
		{"no team, one asked", loner, []string{"t-a"}, "", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selectTeam(tt.p, tt.requested)
			if tt.wantStatus != 0 {
				if err == nil || err.Status != tt.wantStatus {
					t.Fatalf("selectTeam = %q, %v; want status %d", got, err, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("selectTeam error %v", err)
			}
			if got != tt.want {
				t.Errorf("selectTeam = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSelectTeamForbiddenMessage(t *testing.T) {
	p := &principalEntry{principal: Principal{Teams: teams("t-a")}}
	_, err := selectTeam(p, []string{strings.Repeat("x", 200)})
	if err == nil || err.Type != "forbidden" || !strings.HasPrefix(err.Message, "not a member of team xxx") {
		t.Fatalf("err = %+v", err)
	}
	if len(err.Message) > 100 {
		t.Errorf("message echoes %d bytes of client input", len(err.Message))
	}
}

func TestHasAPICredential(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want bool
	}{
		{"none", http.Header{}, false},
		{"bearer", http.Header{"Authorization": {"Bearer sk-123"}}, true},
		{"bearer lower", http.Header{"Authorization": {"bearer sk-123"}}, true},
		{"bearer empty", http.Header{"Authorization": {"Bearer  "}}, false},
		{"basic is not a LiteLLM key", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, false},
		{"x-litellm-api-key", http.Header{"X-Litellm-Api-Key": {"sk-1"}}, true},
		{"api-key", http.Header{"Api-Key": {"sk-1"}}, true},
		{"x-api-key", http.Header{"X-Api-Key": {"sk-1"}}, true},
		{"x-api-key empty", http.Header{"X-Api-Key": {""}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasAPICredential(tt.h); got != tt.want {
				t.Errorf("hasAPICredential = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRemoveCookie(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"only ours", []string{"teamgate_session=abc"}, nil},
		{"ours among others", []string{"a=1; teamgate_session=abc; b=2"}, []string{"a=1; b=2"}},
		{"lookalike kept", []string{"teamgate_session_x=1; xteamgate_session=2"}, []string{"teamgate_session_x=1; xteamgate_session=2"}},
		{"split lines", []string{"teamgate_session=abc", "c=3"}, []string{"c=3"}},
		// The session's reader takes the name with space around it trimmed,
		// so such a cookie signs in: it must not reach the upstream either.
		{"space before =", []string{"teamgate_session =abc"}, nil},
		{"tab before =, among others", []string{"a=1;\tteamgate_session\t=abc; b=2"}, []string{"a=1; b=2"}},
		{"none", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.in != nil {
				h["Cookie"] = tt.in
			}
			removeCookie(h, "teamgate_session")
			if !slices.Equal(h["Cookie"], tt.want) {
				t.Errorf("Cookie = %q, want %q", h["Cookie"], tt.want)
			}
		})
	}
}

func TestValidHeaderValue(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"alice@example.com", true},
		{"", true},
		{"a\r\nX-Evil: 1", false},
		{"a\x00", false},
		{" padded", false},
		{"Zoë", true},
	}
	for _, tt := range tests {
		if got := validHeaderValue(tt.v); got != tt.want {
			t.Errorf("validHeaderValue(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}
