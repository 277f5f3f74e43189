// Package litellm provisions teams, users and team memberships in LiteLLM
// through its management API, authorised with the proxy's master key.
//
// Work is described by Op values that builders create ahead of time (the
// reconcile stores them in an outbox in the same transaction as its changes)
// and that Client.Apply delivers later, possibly more than once: every Apply
// is idempotent, because LiteLLM's "already exists", "already a member" and
// "not a member" answers count as success.
package litellm

import (
	"encoding/json"
	"strings"
)

// Operation kinds, stored in the outbox as strings. Each names one
// management endpoint.
const (
	KindUserNew      = "user_new"      // POST /user/new
	KindTeamNew      = "team_new"      // POST /team/new (duplicate id → success, then /team/update if alias differs)
	KindTeamUpdate   = "team_update"   // POST /team/update (alias)
	KindTeamBlock    = "team_block"    // POST /team/block
	KindTeamUnblock  = "team_unblock"  // POST /team/unblock
	KindMemberAdd    = "member_add"    // POST /team/member_add, role "user" (already a member → success)
	KindMemberDelete = "member_delete" // POST /team/member_delete (not a member → success)
)

// Op is one management call. Body is the exact JSON request body, built when
// the op is enqueued so that a later config change does not alter what an
// earlier reconcile decided. TeamID and UserID are kept outside the body so
// the outbox can order deliveries per team and per user without parsing it.
type Op struct {
	Kind   string
	TeamID string
	UserID string
	Body   json.RawMessage
}

// TeamParams are the limits a team is created with (LiteLLM's
// default_team_params). Nil or empty fields are left out of the request so
// LiteLLM applies its own defaults.
type TeamParams struct {
	MaxBudget      *float64
	BudgetDuration string
	Models         []string
	TPMLimit       *int64
	RPMLimit       *int64
}

// UserParams are the settings a user is created with (LiteLLM's
// default_internal_user_params). Empty fields are left out.
type UserParams struct {
	UserRole       string
	MaxBudget      *float64
	BudgetDuration string
	Models         []string
}

// MetadataSource marks the teams teamgate created, in the team's metadata.
const MetadataSource = "teamgate"

type teamNewBody struct {
	TeamID         string         `json:"team_id"`
	TeamAlias      string         `json:"team_alias"`
	Models         []string       `json:"models,omitempty"`
	MaxBudget      *float64       `json:"max_budget,omitempty"`
	BudgetDuration string         `json:"budget_duration,omitempty"`
	TPMLimit       *int64         `json:"tpm_limit,omitempty"`
	RPMLimit       *int64         `json:"rpm_limit,omitempty"`
	Metadata       map[string]any `json:"metadata"`
}

type teamUpdateBody struct {
	TeamID    string `json:"team_id"`
	TeamAlias string `json:"team_alias"`
}

type teamIDBody struct {
	TeamID string `json:"team_id"`
}

type userNewBody struct {
	UserID         string   `json:"user_id"`
	UserEmail      string   `json:"user_email,omitempty"`
	SSOUserID      string   `json:"sso_user_id,omitempty"`
	UserRole       string   `json:"user_role,omitempty"`
	MaxBudget      *float64 `json:"max_budget,omitempty"`
	BudgetDuration string   `json:"budget_duration,omitempty"`
	Models         []string `json:"models,omitempty"`
	// AutoCreateKey is always false: /user/new mints a virtual key by
	// default, and a provisioned user must not get a credential nobody asked
	// for (nor a new one at every retry).
	AutoCreateKey bool `json:"auto_create_key"`
}

type memberAddBody struct {
	TeamID string       `json:"team_id"`
	Member memberEntity `json:"member"`
}

type memberEntity struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
}

type memberDeleteBody struct {
	TeamID string `json:"team_id"`
	UserID string `json:"user_id"`
}

// TeamNew creates the team for an Entra group: team_id is the group's object
// id, team_alias its display name. The metadata records that teamgate made
// it and from which group, so operators can tell synced teams apart.
func TeamNew(teamID, alias string, p TeamParams) Op {
	return Op{Kind: KindTeamNew, TeamID: teamID, Body: mustJSON(teamNewBody{
		TeamID:         teamID,
		TeamAlias:      alias,
		Models:         cloneStrings(p.Models),
		MaxBudget:      p.MaxBudget,
		BudgetDuration: p.BudgetDuration,
		TPMLimit:       p.TPMLimit,
		RPMLimit:       p.RPMLimit,
		Metadata:       map[string]any{"source": MetadataSource, "entra_group_id": teamID},
	})}
}

// TeamUpdateAlias renames a team. Only the alias is sent: /team/update
// changes only the fields present, so budgets set by an operator in LiteLLM
// survive a rename.
func TeamUpdateAlias(teamID, alias string) Op {
	return Op{Kind: KindTeamUpdate, TeamID: teamID, Body: mustJSON(teamUpdateBody{TeamID: teamID, TeamAlias: alias})}
}

// TeamBlock blocks a team whose group is no longer assigned to the app; its
// keys stop working but nothing is deleted, so re-assigning restores it.
func TeamBlock(teamID string) Op {
	return Op{Kind: KindTeamBlock, TeamID: teamID, Body: mustJSON(teamIDBody{TeamID: teamID})}
}

// TeamUnblock reverses TeamBlock.
func TeamUnblock(teamID string) Op {
	return Op{Kind: KindTeamUnblock, TeamID: teamID, Body: mustJSON(teamIDBody{TeamID: teamID})}
}

// UserNew creates a user keyed by the Entra object id. The email is
// lower-cased as LiteLLM's own SSO does, so both paths store the same value.
func UserNew(userID, email, ssoUserID string, p UserParams) Op {
	return Op{Kind: KindUserNew, UserID: userID, Body: mustJSON(userNewBody{
		UserID:         userID,
		UserEmail:      strings.ToLower(strings.TrimSpace(email)),
		SSOUserID:      ssoUserID,
		UserRole:       p.UserRole,
		MaxBudget:      p.MaxBudget,
		BudgetDuration: p.BudgetDuration,
		Models:         cloneStrings(p.Models),
	})}
}

// MemberAdd adds a user to a team with role "user" (role "admin" needs a
// LiteLLM Enterprise licence and would fail with 400).
func MemberAdd(teamID, userID string) Op {
	return Op{Kind: KindMemberAdd, TeamID: teamID, UserID: userID, Body: mustJSON(memberAddBody{
		TeamID: teamID,
		Member: memberEntity{UserID: userID, Role: "user"},
	})}
}

// MemberDelete removes a user from a team.
func MemberDelete(teamID, userID string) Op {
	return Op{Kind: KindMemberDelete, TeamID: teamID, UserID: userID, Body: mustJSON(memberDeleteBody{TeamID: teamID, UserID: userID})}
}

// Path is the management endpoint an op of this kind is posted to, or "" for
// an unknown kind.
func Path(kind string) string {
	switch kind {
	case KindUserNew:
		return "/user/new"
	case KindTeamNew:
		return "/team/new"
	case KindTeamUpdate:
		return "/team/update"
	case KindTeamBlock:
		return "/team/block"
	case KindTeamUnblock:
		return "/team/unblock"
	case KindMemberAdd:
		return "/team/member_add"
	case KindMemberDelete:
		return "/team/member_delete"
	}
	return ""
}

// mustJSON marshals the builders' own structs, which cannot fail.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("litellm: marshal request body: " + err.Error())
	}
	return b
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}
