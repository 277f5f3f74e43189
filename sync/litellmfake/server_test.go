package litellmfake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

const key = "sk-master-fake"

type call struct {
	method, path, body string
	auth               string // default "Bearer " + key; "-" for none
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, srv *httptest.Server, c call) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), c.method, srv.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	switch c.auth {
	case "":
		req.Header.Set("Authorization", "Bearer "+key)
	case "-":
	default:
		req.Header.Set("Authorization", c.auth)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("answer is not a JSON object: %s", raw)
		}
	}
	return answer{res.StatusCode, res.Header, body}
}

func newServer(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	f := New(key)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// field walks a decoded JSON object along a path of keys and indexes.
func field(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestEndpointsAnswerLikeLiteLLM(t *testing.T) {
	seed := func(f *Server) {
		f.PutTeam(Team{ID: "g1", Alias: "One", Members: []Member{{UserID: "u1", Role: "user"}}})
		f.PutUser(User{ID: "u1", Email: "u1@example.com"})
	}
	tests := []struct {
		name   string
		call   call
		status int
		// want maps a path in the answer (dot-separated) to its value.
		want map[string]any
	}{
		{name: "no key", call: call{method: "POST", path: "/team/new", body: `{}`, auth: "-"}, status: 401,
			want: map[string]any{"error.type": "auth_error", "error.code": "401", "error.message": "Authentication Error, No api key passed in."}},
		{name: "wrong key", call: call{method: "POST", path: "/team/new", body: `{}`, auth: "Bearer sk-nope1234"}, status: 401,
			want: map[string]any{"error.type": "auth_error", "error.param": "None"}},
		{name: "a bad bearer key on user/info", call: call{method: "GET", path: "/user/info?user_id=u1", auth: "Bearer sk-x"}, status: 401},
		{name: "team/new", call: call{method: "POST", path: "/team/new", body: `{"team_id":"g2","team_alias":"Two","max_budget":3,"models":["m"],"metadata":{"a":1}}`}, status: 200,
			want: map[string]any{"team_id": "g2", "team_alias": "Two", "max_budget": 3.0, "models.0": "m", "metadata.a": 1.0,
				"members_with_roles.0.user_id": "default_user_id", "members_with_roles.0.role": "admin", "blocked": false}},
		{name: "team/new without team_id generates one", call: call{method: "POST", path: "/team/new", body: `{"team_alias":"X"}`}, status: 200,
			want: map[string]any{"team_id": "team-00000001"}},
		{name: "team/new duplicate", call: call{method: "POST", path: "/team/new", body: `{"team_id":"g1"}`}, status: 400,
			want: map[string]any{"error.type": "internal_server_error", "error.code": "400",
				"error.message": "{'error': 'Team id = g1 already exists. Please use a different team id.'}"}},
		{name: "team/new bad JSON", call: call{method: "POST", path: "/team/new", body: `{`}, status: 422,
			want: map[string]any{"detail.0.type": "json_invalid"}},
		{name: "team/new ill-typed", call: call{method: "POST", path: "/team/new", body: `{"max_budget":"x"}`}, status: 422,
			want: map[string]any{"detail.0.loc.1": "max_budget"}},
		{name: "team/update", call: call{method: "POST", path: "/team/update", body: `{"team_id":"g1","team_alias":"Uno"}`}, status: 200,
			want: map[string]any{"team_id": "g1", "data.team_alias": "Uno", "data.members_with_roles.0.user_id": "u1"}},
		{name: "team/update unknown", call: call{method: "POST", path: "/team/update", body: `{"team_id":"nope","team_alias":"x"}`}, status: 404,
			want: map[string]any{"detail.error": "Team not found, passed team_id=nope"}},
		{name: "team/update without team_id", call: call{method: "POST", path: "/team/update", body: `{"team_alias":"x"}`}, status: 422,
			want: map[string]any{"detail.0.loc.1": "team_id"}},
		{name: "team/info", call: call{method: "GET", path: "/team/info?team_id=g1"}, status: 200,
			want: map[string]any{"team_id": "g1", "team_info.team_alias": "One"}},
		{name: "team/info unknown", call: call{method: "GET", path: "/team/info?team_id=nope"}, status: 404,
			want: map[string]any{"error.type": "auth_error", "error.message": "{'message': 'Team not found, passed team id: nope.'}"}},
		{name: "team/info wrong method", call: call{method: "POST", path: "/team/info", body: `{}`}, status: 405},
		{name: "team/block", call: call{method: "POST", path: "/team/block", body: `{"team_id":"g1"}`}, status: 200,
			want: map[string]any{"blocked": true}},
		{name: "team/block unknown", call: call{method: "POST", path: "/team/block", body: `{"team_id":"nope"}`}, status: 404,
			want: map[string]any{"detail.error": "Team not found, passed team_id=nope"}},
		{name: "team/unblock unknown", call: call{method: "POST", path: "/team/unblock", body: `{"team_id":"nope"}`}, status: 404},
		{name: "member_add", call: call{method: "POST", path: "/team/member_add", body: `{"team_id":"g1","member":{"user_id":"u2","role":"user"}}`}, status: 200,
			want: map[string]any{"members_with_roles.1.user_id": "u2", "updated_users.0.user_id": "u2"}},
		{name: "member_add list", call: call{method: "POST", path: "/team/member_add", body: `{"team_id":"g1","member":[{"user_id":"u2","role":"user"},{"user_id":"u3","role":"user"}]}`}, status: 200,
			want: map[string]any{"members_with_roles.2.user_id": "u3"}},
		{name: "member_add already in team", call: call{method: "POST", path: "/team/member_add", body: `{"team_id":"g1","member":{"user_id":"u1","role":"user"}}`}, status: 400,
			want: map[string]any{"error.type": "team_member_already_in_team", "error.param": "member", "error.code": "400"}},
		{name: "member_add admin needs Enterprise", call: call{method: "POST", path: "/team/member_add", body: `{"team_id":"g1","member":{"user_id":"u2","role":"admin"}}`}, status: 400},
		{name: "member_add unknown team", call: call{method: "POST", path: "/team/member_add", body: `{"team_id":"nope","member":{"user_id":"u2","role":"user"}}`}, status: 404,
			want: map[string]any{"detail.error": "Team not found for team_id=nope"}},
		{name: "member_add bad role", call: call{method: "POST", path: "/team/member_add", body: `{"team_id":"g1","member":{"user_id":"u2","role":"owner"}}`}, status: 422},
		{name: "member_add no member", call: call{method: "POST", path: "/team/member_add", body: `{"team_id":"g1"}`}, status: 400},
		{name: "member_delete", call: call{method: "POST", path: "/team/member_delete", body: `{"team_id":"g1","user_id":"u1"}`}, status: 200,
			want: map[string]any{"members_with_roles": []any{}}},
		{name: "member_delete by email", call: call{method: "POST", path: "/team/member_delete", body: `{"team_id":"g1","user_email":"u1@example.com"}`}, status: 200},
		{name: "member_delete non-member", call: call{method: "POST", path: "/team/member_delete", body: `{"team_id":"g1","user_id":"u9"}`}, status: 400,
			want: map[string]any{"detail.error": "User not found in team"}},
		{name: "member_delete unknown team", call: call{method: "POST", path: "/team/member_delete", body: `{"team_id":"nope","user_id":"u1"}`}, status: 400,
			want: map[string]any{"detail.error": "Team id=nope does not exist in db"}},
		{name: "member_delete nobody", call: call{method: "POST", path: "/team/member_delete", body: `{"team_id":"g1"}`}, status: 400},
		{name: "user/new mints a key by default", call: call{method: "POST", path: "/user/new", body: `{"user_id":"u2","user_email":"u2@example.com"}`}, status: 200,
			want: map[string]any{"user_id": "u2", "key": "sk-fake0000000000000001"}},
		{name: "user/new without a key", call: call{method: "POST", path: "/user/new", body: `{"user_id":"u2","auto_create_key":false}`}, status: 200,
			want: map[string]any{"user_id": "u2", "key": nil}},
		{name: "user/new existing id", call: call{method: "POST", path: "/user/new", body: `{"user_id":"u1"}`}, status: 409,
			want: map[string]any{"error.message": "{'error': 'User with id u1 already exists'}", "error.code": "409"}},
		{name: "user/new existing email", call: call{method: "POST", path: "/user/new", body: `{"user_id":"u2","user_email":"U1@EXAMPLE.com"}`}, status: 409,
			want: map[string]any{"error.message": "{'error': 'User with email u1@example.com already exists'}"}},
		{name: "user/new bad role", call: call{method: "POST", path: "/user/new", body: `{"user_id":"u2","user_role":"root"}`}, status: 422},
		{name: "user/info", call: call{method: "GET", path: "/user/info?user_id=u1"}, status: 200,
			want: map[string]any{"user_id": "u1", "user_info.user_email": "u1@example.com", "user_info.teams.0": "g1", "teams.0.team_id": "g1"}},
		{name: "user/info unknown", call: call{method: "GET", path: "/user/info?user_id=nope"}, status: 404,
			want: map[string]any{"error.message": "User nope not found", "error.code": "404"}},
		{name: "user/info without a key", call: call{method: "GET", path: "/user/info?user_id=u1", auth: "-"}, status: 401},
		{name: "any other path is the upstream, without auth", call: call{method: "POST", path: "/v1/chat/completions", body: `{}`, auth: "-"}, status: 200,
			want: map[string]any{"path": "/v1/chat/completions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newServer(t)
			seed(f)
			got := do(t, srv, tt.call)
			if got.status != tt.status {
				t.Fatalf("status = %d, want %d; body %v", got.status, tt.status, got.body)
			}
			for path, want := range tt.want {
				var keys []any
				for _, k := range strings.Split(path, ".") {
					if n := strings.IndexFunc(k, func(r rune) bool { return r < '0' || r > '9' }); n < 0 {
						i := 0
						for _, d := range k {
							i = i*10 + int(d-'0')
						}
						keys = append(keys, i)
					} else {
						keys = append(keys, k)
					}
				}
				if v := field(got.body, keys...); !reflect.DeepEqual(v, want) {
					t.Errorf("%s = %#v, want %#v (body %v)", path, v, want, got.body)
				}
			}
		})
	}
}

func TestMasterKeyHeaderVariants(t *testing.T) {
	f, srv := newServer(t)
	f.PutUser(User{ID: "u1"})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/user/info?user_id=u1", nil)
	req.Header.Set("x-litellm-api-key", key)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("x-litellm-api-key: status %d", res.StatusCode)
	}
}

func TestStateFollowsRequests(t *testing.T) {
	f, srv := newServer(t)
	for _, c := range []call{
		{method: "POST", path: "/team/new", body: `{"team_id":"g1","team_alias":"One","max_budget":5,"tpm_limit":7,"budget_duration":"30d"}`},
		{method: "POST", path: "/team/update", body: `{"team_id":"g1","team_alias":"Uno","max_budget":null}`},
		{method: "POST", path: "/user/new", body: `{"user_id":"u1","user_email":"a@x","sso_user_id":"s","user_role":"internal_user","auto_create_key":false}`},
		{method: "POST", path: "/team/member_add", body: `{"team_id":"g1","member":{"user_id":"u1","role":"user"}}`},
		{method: "POST", path: "/team/block", body: `{"team_id":"g1"}`},
	} {
		if a := do(t, srv, c); a.status != 200 {
			t.Fatalf("%s: %d %v", c.path, a.status, a.body)
		}
	}
	tm, ok := f.Team("g1")
	want := Team{ID: "g1", Alias: "Uno", BudgetDuration: "30d", TPMLimit: tm.TPMLimit, Blocked: true,
		Members: []Member{{UserID: DefaultUserID, Role: "admin"}, {UserID: "u1", Role: "user"}}}
	if !ok || !reflect.DeepEqual(tm, want) || *tm.TPMLimit != 7 {
		t.Errorf("team = %+v", tm)
	}
	u, _ := f.User("u1")
	if !reflect.DeepEqual(u, User{ID: "u1", Email: "a@x", SSOUserID: "s", Role: "internal_user"}) {
		t.Errorf("user = %+v", u)
	}
	if n := len(f.Teams()); n != 1 {
		t.Errorf("teams = %d", n)
	}
	// Copies: changing what the accessors return changes nothing inside.
	tm.Members[0].Role = "changed"
	if again, _ := f.Team("g1"); again.Members[0].Role != "admin" {
		t.Error("Team returned shared state")
	}
	reqs := f.Requests()
	if len(reqs) != 5 || reqs[0].Path != "/team/new" || reqs[0].Status != 200 || !strings.Contains(string(reqs[0].Body), `"g1"`) {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestFailNext(t *testing.T) {
	f, srv := newServer(t)
	f.FailNext("/team/", 2, 429, "3")
	c := call{method: "POST", path: "/team/new", body: `{"team_id":"g1"}`}
	for i := range 2 {
		a := do(t, srv, c)
		if a.status != 429 || a.header.Get("Retry-After") != "3" || field(a.body, "error", "code") != "429" {
			t.Fatalf("try %d: %d %v %v", i, a.status, a.header, a.body)
		}
	}
	if a := do(t, srv, call{method: "POST", path: "/user/new", body: `{"user_id":"u"}`}); a.status != 200 {
		t.Errorf("other path failed: %d", a.status)
	}
	if a := do(t, srv, c); a.status != 200 {
		t.Errorf("third try: %d", a.status)
	}
	f.FailNext("/user/", 5, 500, "")
	f.FailNext("/user/", 0, 0, "")
	if a := do(t, srv, call{method: "GET", path: "/user/info?user_id=u"}); a.status != 200 {
		t.Errorf("cleared rule still fails: %d", a.status)
	}
	var statuses []int
	for _, r := range f.Requests() {
		statuses = append(statuses, r.Status)
	}
	if !reflect.DeepEqual(statuses, []int{429, 429, 200, 200, 200}) {
		t.Errorf("recorded statuses = %v", statuses)
	}
}

func TestSetDownDropsTheConnection(t *testing.T) {
	f, srv := newServer(t)
	f.SetDown(true)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/team/new", strings.NewReader(`{}`))
	res, err := srv.Client().Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("got an answer %d, want a transport error", res.StatusCode)
	}
	f.SetDown(false)
	if a := do(t, srv, call{method: "POST", path: "/team/new", body: `{"team_id":"g"}`}); a.status != 200 {
		t.Errorf("after coming back: %d", a.status)
	}
	if reqs := f.Requests(); len(reqs) < 2 || reqs[0].Status != 0 {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestSetDownWithoutHijack(t *testing.T) {
	f := New(key)
	f.SetDown(true)
	rec := httptest.NewRecorder()
	f.ServeHTTP(rec, httptest.NewRequest("GET", "/team/info?team_id=x", nil))
	if rec.Code != 503 || rec.Header().Get("Connection") != "close" {
		t.Errorf("recorder answer = %d %v", rec.Code, rec.Header())
	}
}

func TestSetLatencyHonoursTheRequestContext(t *testing.T) {
	f, srv := newServer(t)
	f.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/anything", nil)
	_, err := srv.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	// The handler returned when the client left: Close would otherwise
	// block for an hour.
	srv.Close()
	if reqs := f.Requests(); len(reqs) != 1 || reqs[0].Status != 0 {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestOnRequestReportsEachRequest(t *testing.T) {
	f, srv := newServer(t)
	got := make(chan Request, 4)
	f.OnRequest(func(r Request) { got <- r })
	do(t, srv, call{method: "POST", path: "/team/new", body: `{"team_id":"g1"}`})
	do(t, srv, call{method: "POST", path: "/team/new", body: `{"team_id":"g1"}`})
	if r := <-got; r.Path != "/team/new" || r.Status != 200 {
		t.Errorf("first = %+v", r)
	}
	if r := <-got; r.Status != 400 {
		t.Errorf("second = %+v", r)
	}
	f.OnRequest(nil)
	do(t, srv, call{method: "GET", path: "/x"})
	if len(got) != 0 {
		t.Error("observer called after removal")
	}
}
