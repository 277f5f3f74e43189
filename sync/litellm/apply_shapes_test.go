package litellm

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// canned is one answer of a hand-written LiteLLM, keyed by path.
type canned struct {
	status int
	body   string
	header map[string]string
}

// seen is one request the hand-written LiteLLM received.
type seen struct {
	method, path, query, auth, contentType, body string
}

// cannedLiteLLM answers each path with its canned answers in turn (the
// last one repeats), recording what it received.
func cannedLiteLLM(t *testing.T, answers map[string][]canned) (*httptest.Server, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var log []seen
	next := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		log = append(log, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(body)})
		list := answers[r.URL.Path]
		i := min(next[r.URL.Path], len(list)-1)
		next[r.URL.Path]++
		mu.Unlock()
		if len(list) == 0 {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusTeapot)
			return
		}
		a := list[i]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.header["Content-Type"] == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(log)
	}
}

// proxyErr is LiteLLM's ProxyException envelope.
func proxyErr(message, typ, param, code string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": typ, "param": param, "code": code}})
	return string(b)
}

// detailErr is FastAPI's HTTPException envelope with a dict detail.
func detailErr(message string) string {
	b, _ := json.Marshal(map[string]any{"detail": map[string]any{"error": message}})
	return string(b)
}

const teamInfoG = `{"team_id":"g1","team_info":{"team_id":"g1","team_alias":"Research","members_with_roles":[{"user_id":"default_user_id","role":"admin"}],"blocked":false},"keys":[],"team_memberships":[]}`

func TestApplyParsesRealAnswerShapes(t *testing.T) {
	tests := []struct {
		name      string
		op        Op
		answers   map[string][]canned
		want      *outcome
		wantMsg   string // substring of the error message
		wantPaths []string
	}{
		{
			name: "team_new duplicate, v1.102 ProxyException with a Python-repr message",
			op:   TeamNew("g1", "Research", TeamParams{}),
			answers: map[string][]canned{
				"/team/new":  {{400, proxyErr("{'error': 'Team id = g1 already exists. Please use a different team id.'}", "internal_server_error", "None", "400"), nil}},
				"/team/info": {{200, teamInfoG, nil}},
			},
			wantPaths: []string{"/team/new", "/team/info"},
		},
		{
			name: "team_new duplicate, plain FastAPI detail envelope, alias differs",
			op:   TeamNew("g1", "Research & Dev", TeamParams{}),
			answers: map[string][]canned{
				"/team/new":    {{400, detailErr("Team id = g1 already exists. Please use a different team id."), nil}},
				"/team/info":   {{200, teamInfoG, nil}},
				"/team/update": {{200, `{"team_id":"g1","data":{}}`, nil}},
			},
			wantPaths: []string{"/team/new", "/team/info", "/team/update"},
		},
		{
			name: "team_new duplicate, then the team vanished: /team/info 404 with auth_error type",
			op:   TeamNew("g1", "Research", TeamParams{}),
			answers: map[string][]canned{
				"/team/new":  {{400, proxyErr("{'error': 'Team id = g1 already exists. Please use a different team id.'}", "internal_server_error", "None", "400"), nil}},
				"/team/info": {{404, proxyErr("{'message': 'Team not found, passed team id: g1.'}", "auth_error", "None", "404"), nil}},
			},
			want:    &outcome{status: 404, errType: "auth_error"},
			wantMsg: "/team/info: HTTP 404 auth_error: Team not found, passed team id: g1.",
		},
		{
			name: "team_new other 400 is permanent, message unwrapped",
			op:   TeamNew("g1", "Research", TeamParams{TPMLimit: ptr[int64](9)}),
			answers: map[string][]canned{"/team/new": {{400, proxyErr(
				"{'error': 'tpm limit higher than user max. User tpm limit=1. User role=internal_user'}", "internal_server_error", "None", "400"), nil}}},
			want:    &outcome{status: 400, errType: "internal_server_error"},
			wantMsg: ": tpm limit higher than user max. User tpm limit=1. User role=internal_user",
		},
		{
			name:    "user_new 409 in v1.102",
			op:      UserNew("oid-1", "a@example.com", "", UserParams{}),
			answers: map[string][]canned{"/user/new": {{409, proxyErr("{'error': 'User with id oid-1 already exists'}", "internal_server_error", "None", "409"), nil}}},
		},
		{
			name:    "user_new 400 already exists in older releases",
			op:      UserNew("oid-1", "a@example.com", "", UserParams{}),
			answers: map[string][]canned{"/user/new": {{400, detailErr("User with id oid-1 already exists"), nil}}},
		},
		{
			name:    "user_new 200 in older releases that upserted",
			op:      UserNew("oid-1", "a@example.com", "", UserParams{}),
			answers: map[string][]canned{"/user/new": {{200, `{"user_id":"oid-1","key":null}`, nil}}},
		},
		{
			name:    "user_new other 400 is permanent",
			op:      UserNew("oid-1", "", "", UserParams{BudgetDuration: "forever"}),
			answers: map[string][]canned{"/user/new": {{400, proxyErr("{'error': 'Invalid budget_duration: forever'}", "internal_server_error", "None", "400"), nil}}},
			want:    &outcome{status: 400},
			wantMsg: "Invalid budget_duration: forever",
		},
		{
			name: "member_add already a member, v1.102 typed error",
			op:   MemberAdd("g1", "oid-1"),
			answers: map[string][]canned{"/team/member_add": {{400, proxyErr(
				"User=oid-1 already in team. Existing members=[Member(user_email=None, user_id='oid-1', role='user')]", "team_member_already_in_team", "member", "400"), nil}}},
		},
		{
			name: "member_add already a member, older detail envelope",
			op:   MemberAdd("g1", "oid-1"),
			answers: map[string][]canned{"/team/member_add": {{400, detailErr(
				"User=oid-1 already in team. Existing members=[Member(user_email=None, user_id='oid-1', role='user')]"), nil}}},
		},
		{
			name:    "member_add to an unknown team is a permanent 404",
			op:      MemberAdd("g1", "oid-1"),
			answers: map[string][]canned{"/team/member_add": {{404, detailErr("Team not found for team_id=g1"), nil}}},
			want:    &outcome{status: 404},
			wantMsg: "HTTP 404: Team not found for team_id=g1",
		},
		{
			name:    "member_add other 400 is permanent",
			op:      MemberAdd("g1", "oid-1"),
			answers: map[string][]canned{"/team/member_add": {{400, detailErr("Assigning team admins is a premium feature."), nil}}},
			want:    &outcome{status: 400},
		},
		{
			name:    "member_delete of a non-member",
			op:      MemberDelete("g1", "oid-1"),
			answers: map[string][]canned{"/team/member_delete": {{400, detailErr("User not found in team"), nil}}},
		},
		{
			name:    "member_delete from an unknown team is permanent",
			op:      MemberDelete("g1", "oid-1"),
			answers: map[string][]canned{"/team/member_delete": {{400, detailErr("Team id=g1 does not exist in db"), nil}}},
			want:    &outcome{status: 400},
			wantMsg: "Team id=g1 does not exist in db",
		},
		{
			name: "422 validation list",
			op:   TeamBlock("g1"),
			answers: map[string][]canned{"/team/block": {{422,
				`{"detail":[{"type":"missing","loc":["body","team_id"],"msg":"Field required","input":{}},{"type":"string_type","loc":["body","x",0],"msg":"Input should be a valid string","input":1}]}`, nil}}},
			want:    &outcome{status: 422, errType: "missing"},
			wantMsg: "body.team_id: Field required; body.x.0: Input should be a valid string",
		},
		{
			name: "401 auth_error, key hash redacted",
			op:   TeamBlock("g1"),
			answers: map[string][]canned{"/team/block": {{401, proxyErr(
				"Authentication Error, Invalid proxy server token passed. Received API Key = sk-...cdef, Key Hash (Token) =0123456789abcdef0123456789abcdef. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
				"auth_error", "None", "401"), nil}}},
			want:    &outcome{status: 401, errType: "auth_error"},
			wantMsg: "Key Hash (Token) =[REDACTED]",
		},
		{
			name: "a key echoed whole is redacted",
			op:   TeamBlock("g1"),
			answers: map[string][]canned{"/team/block": {{401, proxyErr(
				"Authentication Error, LiteLLM Virtual Key expected. Received="+testMasterKey+", expected to start with 'sk-'.", "auth_error", "None", "401"), nil}}},
			want:    &outcome{status: 401},
			wantMsg: "Received=[REDACTED]",
		},
		{
			name:    "502 HTML from a load balancer is transient",
			op:      TeamBlock("g1"),
			answers: map[string][]canned{"/team/block": {{502, "<html><body>502 Bad Gateway</body></html>", map[string]string{"Content-Type": "text/html"}}}},
			want:    &outcome{transient: true},
			wantMsg: "HTTP 502",
		},
		{
			name:    "429 with Retry-After seconds",
			op:      TeamBlock("g1"),
			answers: map[string][]canned{"/team/block": {{429, proxyErr("Rate limit exceeded", "throttling_error", "None", "429"), map[string]string{"Retry-After": "30"}}}},
			want:    &outcome{transient: true, retryAfter: 30e9, hasRetry: true},
		},
		{
			name:    "a garbage Retry-After is ignored",
			op:      TeamBlock("g1"),
			answers: map[string][]canned{"/team/block": {{503, "", map[string]string{"Retry-After": "soon"}}}},
			want:    &outcome{transient: true},
		},
		{
			name:    "a redirect is permanent and points at litellm.url",
			op:      TeamBlock("g1"),
			answers: map[string][]canned{"/team/block": {{302, "", map[string]string{"Location": "https://login.example.com/"}}}},
			want:    &outcome{status: 302},
			wantMsg: "check litellm.url",
		},
		{
			name:    "a huge error body is bounded",
			op:      TeamBlock("g1"),
			answers: map[string][]canned{"/team/block": {{400, detailErr(strings.Repeat("x", 1<<20)), nil}}},
			want:    &outcome{status: 400},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, requests := cannedLiteLLM(t, tt.answers)
			c, err := New(srv.URL+"/", testMasterKey)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Apply(t.Context(), tt.op)
			checkOutcome(t, err, tt.want)
			if tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Errorf("error %v does not contain %q", err, tt.wantMsg)
			}
			if err != nil && len(err.Error()) > 2*maxMessage {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			reqs := requests()
			if tt.wantPaths != nil {
				var got []string
				for _, r := range reqs {
					got = append(got, r.path)
				}
				if !slices.Equal(got, tt.wantPaths) {
					t.Errorf("requests = %v, want %v", got, tt.wantPaths)
				}
			}
			first := reqs[0]
			if first.method != http.MethodPost || first.path != Path(tt.op.Kind) || first.body != string(tt.op.Body) ||
				first.auth != "Bearer "+testMasterKey || first.contentType != "application/json" {
				t.Errorf("first request = %+v", first)
			}
		})
	}
}

func TestTeamNewDuplicateFollowUpRequests(t *testing.T) {
	srv, requests := cannedLiteLLM(t, map[string][]canned{
		"/litellm/team/new":    {{400, detailErr("Team id = g 1/x already exists. Please use a different team id."), nil}},
		"/litellm/team/info":   {{200, `{"team_id":"g 1/x","team_info":{"team_alias":null}}`, nil}},
		"/litellm/team/update": {{200, `{}`, nil}},
	})
	c, err := New(srv.URL+"/litellm", testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(t.Context(), TeamNew("g 1/x", "New", TeamParams{})); err != nil {
		t.Fatal(err)
	}
	reqs := requests()
	if len(reqs) != 3 {
		t.Fatalf("requests = %+v", reqs)
	}
	if reqs[0].path != "/litellm/team/new" {
		t.Errorf("path prefix lost: %q", reqs[0].path)
	}
	if r := reqs[1]; r.method != http.MethodGet || r.path != "/litellm/team/info" || r.query != "team_id=g+1%2Fx" || r.auth != "Bearer "+testMasterKey {
		t.Errorf("info request = %+v", r)
	}
	if r := reqs[2]; r.method != http.MethodPost || r.body != `{"team_id":"g 1/x","team_alias":"New"}` {
		t.Errorf("update request = %+v", r)
	}
}

func TestTeamNewDuplicateWithHugeOrOddTeamInfo(t *testing.T) {
	dup := canned{400, detailErr("Team id = g1 already exists. Please use a different team id."), nil}
	huge := `{"team_id":"g1","team_info":{"team_alias":"Research"},"keys":["` + strings.Repeat("k", maxInfoBody) + `"]}`
	tests := []struct {
		name      string
		info      canned
		wantPaths []string
		wantErr   string
	}{
		{
			name:      "an answer too long to read: the alias is updated without comparing",
			info:      canned{200, huge, nil},
			wantPaths: []string{"/team/new", "/team/info", "/team/update"},
		},
		{
			name:      "an answer that is not LiteLLM's JSON is permanent",
			info:      canned{200, "<html>LiteLLM UI</html>", map[string]string{"Content-Type": "text/html"}},
			wantPaths: []string{"/team/new", "/team/info"},
			wantErr:   "check litellm.url",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, requests := cannedLiteLLM(t, map[string][]canned{
				"/team/new": {dup}, "/team/info": {tt.info}, "/team/update": {{200, `{}`, nil}},
			})
			c, err := New(srv.URL, testMasterKey)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Apply(t.Context(), TeamNew("g1", "Research", TeamParams{}))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if tt.wantErr != "" && (!IsPermanent(err) || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Apply: %v, want a permanent error with %q", err, tt.wantErr)
			}
			var got []string
			for _, r := range requests() {
				got = append(got, r.path)
			}
			if !slices.Equal(got, tt.wantPaths) {
				t.Errorf("requests = %v, want %v", got, tt.wantPaths)
			}
		})
	}
}
