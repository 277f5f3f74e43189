package litellm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/litellmfake"
)

// outcome is what a test expects Apply to return.
type outcome struct {
	transient  bool
	status     int    // for a *PermanentError
	errType    string // for a *PermanentError, when not empty
	retryAfter time.Duration
	hasRetry   bool
	cause      error // errors.Is target, when not nil
}

func checkOutcome(t *testing.T, err error, want *outcome) {
	t.Helper()
	if err != nil {
		assertNoSecret(t, "error", err.Error(), testMasterKey)
	}
	if want == nil {
		if err != nil {
			t.Fatalf("Apply: %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Apply returned nil, want an error")
	}
	if got := errors.Is(err, ErrTransient); got != want.transient {
		t.Fatalf("errors.Is(ErrTransient) = %v, want %v (err: %v)", got, want.transient, err)
	}
	if !want.transient {
		var pe *PermanentError
		if !errors.As(err, &pe) {
			t.Fatalf("err %T %v is not a *PermanentError", err, err)
		}
		if pe.Status != want.status {
			t.Errorf("status = %d, want %d (err: %v)", pe.Status, want.status, err)
		}
		if want.errType != "" && pe.Type != want.errType {
			t.Errorf("type = %q, want %q", pe.Type, want.errType)
		}
	} else if IsPermanent(err) {
		t.Errorf("transient error is also permanent: %v", err)
	}
	d, ok := RetryAfter(err)
	if ok != want.hasRetry || d != want.retryAfter {
		t.Errorf("RetryAfter = %v, %v; want %v, %v", d, ok, want.retryAfter, want.hasRetry)
	}
	if want.cause != nil && !errors.Is(err, want.cause) {
		t.Errorf("err %v does not wrap %v", err, want.cause)
	}
}

func TestApplyAgainstFake(t *testing.T) {
	team := func(f *litellmfake.Server, id, alias string, members ...string) {
		tm := litellmfake.Team{ID: id, Alias: alias}
		for _, m := range members {
			tm.Members = append(tm.Members, litellmfake.Member{UserID: m, Role: "user"})
		}
		f.PutTeam(tm)
	}
	tests := []struct {
		name      string
		key       string // default testMasterKey
		setup     func(*litellmfake.Server)
		op        Op
		want      *outcome
		wantPaths []string // requests the fake saw, when not nil
		check     func(*testing.T, *litellmfake.Server)
	}{
		{
			name: "user_new creates the user without a key",
			op:   UserNew("oid-1", "Ada@Example.com", "sub-1", UserParams{UserRole: "internal_user", MaxBudget: ptr(5.0), Models: []string{"m"}}),
			check: func(t *testing.T, f *litellmfake.Server) {
				u, ok := f.User("oid-1")
				if !ok || u.Email != "ada@example.com" || u.SSOUserID != "sub-1" || u.Role != "internal_user" ||
					u.MaxBudget == nil || *u.MaxBudget != 5 || !slices.Equal(u.Models, []string{"m"}) {
					t.Errorf("user = %+v, %v", u, ok)
				}
				if u.KeysMinted != 0 {
					t.Errorf("a virtual key was minted: %d", u.KeysMinted)
				}
			},
		},
		{
			name:      "user_new for an existing user_id is done (409)",
			setup:     func(f *litellmfake.Server) { f.PutUser(litellmfake.User{ID: "oid-1", Email: "old@example.com"}) },
			op:        UserNew("oid-1", "ada@example.com", "", UserParams{}),
			wantPaths: []string{"/user/new"},
			check: func(t *testing.T, f *litellmfake.Server) {
				if u, _ := f.User("oid-1"); u.Email != "old@example.com" {
					t.Errorf("existing user changed: %+v", u)
				}
			},
		},
		{
			name:  "user_new for an existing email is done (409)",
			setup: func(f *litellmfake.Server) { f.PutUser(litellmfake.User{ID: "other", Email: "ADA@example.com"}) },
			op:    UserNew("oid-1", "ada@example.com", "", UserParams{}),
		},
		{
			name: "user_new with an invalid role is a 422",
			op:   UserNew("oid-1", "", "", UserParams{UserRole: "superuser"}),
			want: &outcome{status: http.StatusUnprocessableEntity, errType: "enum"},
		},
		{
			name:      "team_new creates the team with its params and LiteLLM's admin member",
			op:        TeamNew("g1", "Research", TeamParams{MaxBudget: ptr(100.0), BudgetDuration: "30d", Models: []string{"gpt"}, TPMLimit: ptr[int64](10), RPMLimit: ptr[int64](2)}),
			wantPaths: []string{"/team/new"},
			check: func(t *testing.T, f *litellmfake.Server) {
				tm, ok := f.Team("g1")
				if !ok || tm.Alias != "Research" || *tm.MaxBudget != 100 || tm.BudgetDuration != "30d" ||
					*tm.TPMLimit != 10 || *tm.RPMLimit != 2 || !slices.Equal(tm.Models, []string{"gpt"}) {
					t.Errorf("team = %+v", tm)
				}
				if tm.Metadata["source"] != "teamgate" || tm.Metadata["entra_group_id"] != "g1" {
					t.Errorf("metadata = %v", tm.Metadata)
				}
				if !slices.Equal(tm.Members, []litellmfake.Member{{UserID: "default_user_id", Role: "admin"}}) {
					t.Errorf("members = %v", tm.Members)
				}
			},
		},
		{
			name:      "team_new for an existing team with the same alias is done",
			setup:     func(f *litellmfake.Server) { team(f, "g1", "Research") },
			op:        TeamNew("g1", "Research", TeamParams{}),
			wantPaths: []string{"/team/new", "/team/info"},
		},
		{
			name:      "team_new for an existing team with another alias renames it",
			setup:     func(f *litellmfake.Server) { team(f, "g1", "Old name", "oid-1") },
			op:        TeamNew("g1", "Research", TeamParams{MaxBudget: ptr(1.0)}),
			wantPaths: []string{"/team/new", "/team/info", "/team/update"},
			check: func(t *testing.T, f *litellmfake.Server) {
				tm, _ := f.Team("g1")
				if tm.Alias != "Research" || tm.MaxBudget != nil || len(tm.Members) != 1 {
					t.Errorf("team = %+v; want only the alias changed", tm)
				}
			},
		},
		{
			name:  "team_new whose follow-up /team/info fails is transient",
			setup: func(f *litellmfake.Server) { team(f, "g1", "Old"); f.FailNext("/team/info", 1, 502, "") },
			op:    TeamNew("g1", "Research", TeamParams{}),
			want:  &outcome{transient: true},
		},
		{
			name:  "team_new with an ill-typed body is a 422",
			op:    Op{Kind: KindTeamNew, TeamID: "g1", Body: json.RawMessage(`{"team_id":"g1","max_budget":"lots"}`)},
			want:  &outcome{status: http.StatusUnprocessableEntity},
			check: func(t *testing.T, f *litellmfake.Server) { _, ok := f.Team("g1"); assertFalse(t, ok, "team created") },
		},
		{
			name:  "team_update renames",
			setup: func(f *litellmfake.Server) { team(f, "g1", "Old") },
			op:    TeamUpdateAlias("g1", "New"),
			check: func(t *testing.T, f *litellmfake.Server) {
				if tm, _ := f.Team("g1"); tm.Alias != "New" {
					t.Errorf("alias = %q", tm.Alias)
				}
			},
		},
		{name: "team_update of an unknown team is a 404", op: TeamUpdateAlias("nope", "X"), want: &outcome{status: 404}},
		{
			name:  "team_block blocks",
			setup: func(f *litellmfake.Server) { team(f, "g1", "G") },
			op:    TeamBlock("g1"),
			check: func(t *testing.T, f *litellmfake.Server) { tm, _ := f.Team("g1"); assertTrue(t, tm.Blocked, "blocked") },
		},
		{
			name:  "team_unblock unblocks",
			setup: func(f *litellmfake.Server) { f.PutTeam(litellmfake.Team{ID: "g1", Blocked: true}) },
			op:    TeamUnblock("g1"),
			check: func(t *testing.T, f *litellmfake.Server) {
				tm, _ := f.Team("g1")
				assertFalse(t, tm.Blocked, "blocked")
			},
		},
		{name: "team_block of an unknown team is a 404", op: TeamBlock("nope"), want: &outcome{status: 404}},
		{name: "team_unblock of an unknown team is a 404", op: TeamUnblock("nope"), want: &outcome{status: 404}},
		{
			name:  "member_add adds with role user",
			setup: func(f *litellmfake.Server) { team(f, "g1", "G") },
			op:    MemberAdd("g1", "oid-1"),
			check: func(t *testing.T, f *litellmfake.Server) {
				tm, _ := f.Team("g1")
				if !slices.Contains(tm.Members, litellmfake.Member{UserID: "oid-1", Role: "user"}) {
					t.Errorf("members = %v", tm.Members)
				}
			},
		},
		{
			name:      "member_add of a member is done (team_member_already_in_team)",
			setup:     func(f *litellmfake.Server) { team(f, "g1", "G", "oid-1") },
			op:        MemberAdd("g1", "oid-1"),
			wantPaths: []string{"/team/member_add"},
		},
		{name: "member_add to an unknown team is a 404", op: MemberAdd("nope", "oid-1"), want: &outcome{status: 404}},
		{
			name:  "member_delete removes",
			setup: func(f *litellmfake.Server) { team(f, "g1", "G", "oid-1", "oid-2") },
			op:    MemberDelete("g1", "oid-1"),
			check: func(t *testing.T, f *litellmfake.Server) {
				tm, _ := f.Team("g1")
				if !slices.Equal(tm.Members, []litellmfake.Member{{UserID: "oid-2", Role: "user"}}) {
					t.Errorf("members = %v", tm.Members)
				}
			},
		},
		{
			name:  "member_delete of a non-member is done",
			setup: func(f *litellmfake.Server) { team(f, "g1", "G") },
			op:    MemberDelete("g1", "oid-1"),
		},
		{
			name: "member_delete from an unknown team is a 400, not done",
			op:   MemberDelete("nope", "oid-1"),
			want: &outcome{status: 400},
		},
		{
			name:  "a wrong master key is a permanent 401",
			key:   "sk-wrong-key-0000000000",
			op:    TeamBlock("g1"),
			want:  &outcome{status: 401, errType: "auth_error"},
			check: func(t *testing.T, f *litellmfake.Server) { _, ok := f.Team("g1"); assertFalse(t, ok, "team exists") },
		},
		{
			name: "a master key LiteLLM echoes back is redacted",
			key:  "not-a-sk-key-echoed-back",
			op:   TeamBlock("g1"),
			want: &outcome{status: 401, errType: "auth_error"},
		},
		{
			name:  "429 with Retry-After is transient",
			setup: func(f *litellmfake.Server) { f.FailNext("/team/", 1, 429, "7") },
			op:    TeamNew("g1", "G", TeamParams{}),
			want:  &outcome{transient: true, retryAfter: 7 * time.Second, hasRetry: true},
			check: func(t *testing.T, f *litellmfake.Server) { _, ok := f.Team("g1"); assertFalse(t, ok, "team created") },
		},
		{
			name:  "503 with an HTTP-date Retry-After is transient",
			setup: func(f *litellmfake.Server) { f.FailNext("/user/new", 1, 503, "Wed, 01 Jan 2031 00:01:30 GMT") },
			op:    UserNew("oid-1", "", "", UserParams{}),
			want:  &outcome{transient: true, retryAfter: 90 * time.Second, hasRetry: true},
		},
		{
			name:  "500 is transient",
			setup: func(f *litellmfake.Server) { f.FailNext("member_add", 1, 500, "") },
			op:    MemberAdd("g1", "oid-1"),
			want:  &outcome{transient: true},
		},
		{
			name:  "408 is transient",
			setup: func(f *litellmfake.Server) { f.FailNext("member_delete", 1, 408, "") },
			op:    MemberDelete("g1", "oid-1"),
			want:  &outcome{transient: true},
		},
		{
			name:  "LiteLLM down (connection dropped) is transient",
			setup: func(f *litellmfake.Server) { f.SetDown(true) },
			op:    TeamNew("g1", "G", TeamParams{}),
			want:  &outcome{transient: true},
		},
		{
			name:  "a slow LiteLLM hits the per-request timeout",
			setup: func(f *litellmfake.Server) { f.SetLatency(time.Hour) },
			op:    TeamNew("g1", "G", TeamParams{}),
			want:  &outcome{transient: true, cause: context.DeadlineExceeded},
		},
		{
			name: "an unknown kind is permanent",
			op:   Op{Kind: "team_delete", Body: json.RawMessage(`{}`)},
			want: &outcome{status: 0},
		},
		{
			name: "a body that is not JSON is permanent",
			op:   Op{Kind: KindTeamBlock, Body: json.RawMessage(`{`)},
			want: &outcome{status: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == "" {
				key = testMasterKey
			}
			// A short per-request timeout only where it is meant to run out:
			// elsewhere a slow machine must not turn success into a timeout.
			timeout := 30 * time.Second
			if tt.want != nil && errors.Is(tt.want.cause, context.DeadlineExceeded) {
				timeout = 100 * time.Millisecond
			}
			env := newFakeEnv(t, key, WithTimeout(timeout),
				WithClock(fixedClock(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))))
			if tt.setup != nil {
				tt.setup(env.fake)
			}
			err := env.client.Apply(t.Context(), tt.op)
			checkOutcome(t, err, tt.want)
			if err != nil {
				assertNoSecret(t, "error", err.Error(), key)
			}
			if tt.wantPaths != nil {
				if got := paths(env.fake.Requests()); !slices.Equal(got, tt.wantPaths) {
					t.Errorf("requests = %v, want %v", got, tt.wantPaths)
				}
			}
			if tt.check != nil {
				tt.check(t, env.fake)
			}
		})
	}
}

func TestApplyTwiceIsHarmless(t *testing.T) {
	env := newFakeEnv(t, testMasterKey)
	ops := []Op{
		UserNew("oid-1", "a@example.com", "", UserParams{}),
		TeamNew("g1", "G", TeamParams{}),
		MemberAdd("g1", "oid-1"),
		TeamBlock("g1"),
		TeamUnblock("g1"),
		TeamUpdateAlias("g1", "G2"),
		TeamNew("g1", "G3", TeamParams{}), // replayed after a rename: alias follows
		MemberDelete("g1", "oid-1"),
	}
	for round := range 2 {
		for _, op := range ops {
			if err := env.client.Apply(t.Context(), op); err != nil {
				t.Fatalf("round %d, %s: %v", round, op.Kind, err)
			}
		}
	}
	tm, _ := env.fake.Team("g1")
	if tm.Alias != "G3" || tm.Blocked || len(tm.Members) != 1 {
		t.Errorf("team = %+v", tm)
	}
	if len(env.fake.Users()) != 1 {
		t.Errorf("users = %+v", env.fake.Users())
	}
}

func TestApplyHonoursCancelledContext(t *testing.T) {
	env := newFakeEnv(t, testMasterKey)
	env.fake.SetLatency(time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := env.client.Apply(ctx, TeamBlock("g1"))
	if !errors.Is(err, ErrTransient) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want transient wrapping context.Canceled", err)
	}
}

func assertTrue(t *testing.T, v bool, what string) {
	t.Helper()
	if !v {
		t.Errorf("%s: false, want true", what)
	}
}

func assertFalse(t *testing.T, v bool, what string) {
	t.Helper()
	if v {
		t.Errorf("%s: true, want false", what)
	}
}
