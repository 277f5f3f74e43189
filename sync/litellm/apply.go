package litellm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
)

// Apply delivers one op. It returns nil when LiteLLM did it, including the
// answers that mean it was already done ("already exists", "already a
// member", "not a member"), so delivering an op twice is harmless.
//
// Failures are either transient (errors.Is(err, ErrTransient): network,
// timeouts, 5xx, 429, 408; see RetryAfter) or a *PermanentError for any other
// 4xx, including 401 (wrong master key) and 404 (unknown team).
func (c *Client) Apply(ctx context.Context, op Op) error {
	path := Path(op.Kind)
	if path == "" {
		return &PermanentError{Path: op.Kind, Message: fmt.Sprintf("unknown operation kind %q", op.Kind)}
	}
	if !json.Valid(op.Body) {
		return &PermanentError{Path: path, Message: "operation body is not valid JSON"}
	}
	r, err := c.do(ctx, http.MethodPost, path, nil, op.Body, maxErrorBody)
	if err != nil {
		return err
	}
	if r.status >= 200 && r.status < 300 {
		return nil
	}
	if !alreadyDone(op.Kind, r) {
		return r.permanent(path)
	}
	if op.Kind == KindUserNew && contains(r.err.Message, "email") {
		// LiteLLM refused the email, not the id: a user created outside
		// teamgate (an invitation, LiteLLM's own SSO before teamgate) holds
		// it under another user_id. Memberships still work (member_add
		// creates the id), but the operator should know.
		c.log.LogAttrs(ctx, slog.LevelWarn, "litellm: another LiteLLM user already has this email; not creating the user",
			slog.String("user_id", op.UserID), slog.String("message", r.err.Message))
		return nil
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "litellm: already done",
		slog.String("kind", op.Kind), slog.String("team_id", op.TeamID), slog.String("user_id", op.UserID),
		slog.Int("status", r.status), slog.String("message", r.err.Message))
	if op.Kind == KindTeamNew {
		return c.syncAlias(ctx, op)
	}
	return nil
}

// alreadyDone recognises the answers that mean the op's effect is already in
// place. Releases differ in status and wording, so each match is a status
// plus a substring or error type rather than an exact message.
func alreadyDone(kind string, r *response) bool {
	msg, typ := r.err.Message, r.err.Type
	switch kind {
	case KindTeamNew:
		// "Team id = X already exists. Please use a different team id."
		return (r.status == http.StatusBadRequest || r.status == http.StatusConflict) && contains(msg, "already exists")
	case KindUserNew:
		// v1.102 answers 409 for an existing user_id or email; older
		// releases answered 400 (or 200) with "already exists".
		return r.status == http.StatusConflict ||
			(r.status == http.StatusBadRequest && contains(msg, "already exists"))
	case KindMemberAdd:
		return r.status == http.StatusBadRequest &&
			(typ == "team_member_already_in_team" || contains(msg, "already in team") || contains(msg, "already a member"))
	case KindMemberDelete:
		// "User not found in team" — but not "Team id=X does not exist in
		// db", which is a real problem (the team was never provisioned).
		return r.status == http.StatusBadRequest && contains(msg, "not found in team")
	}
	return false
}

// syncAlias follows a duplicate team_new: the team exists, but a rename may
// have happened since it was created (or another writer created it with
// another alias), so the alias is brought up to date when it differs.
func (c *Client) syncAlias(ctx context.Context, op Op) error {
	var want struct {
		TeamAlias *string `json:"team_alias"`
	}
	if err := json.Unmarshal(op.Body, &want); err != nil || want.TeamAlias == nil {
		return nil
	}
	alias, known, err := c.teamAlias(ctx, op.TeamID)
	if err != nil {
		return err
	}
	if known && alias == *want.TeamAlias {
		return nil
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "litellm: team exists with another alias; updating it",
		slog.String("team_id", op.TeamID), slog.String("alias", alias), slog.String("want", *want.TeamAlias))
	up := TeamUpdateAlias(op.TeamID, *want.TeamAlias)
	r, err := c.do(ctx, http.MethodPost, Path(up.Kind), nil, up.Body, maxErrorBody)
	if err != nil {
		return err
	}
	if r.status >= 200 && r.status < 300 {
		return nil
	}
	return r.permanent(Path(up.Kind))
}

// teamAlias reads a team's alias with GET /team/info. known is false when
// the answer was too long to read whole (a team with very many keys): the
// caller then updates the alias without comparing, which is harmless.
func (c *Client) teamAlias(ctx context.Context, teamID string) (alias string, known bool, err error) {
	const path = "/team/info"
	r, err := c.do(ctx, http.MethodGet, path, url.Values{"team_id": {teamID}}, nil, maxInfoBody)
	if err != nil {
		return "", false, err
	}
	if r.status < 200 || r.status >= 300 {
		return "", false, r.permanent(path)
	}
	if r.truncated {
		return "", false, nil
	}
	var info struct {
		TeamInfo struct {
			TeamAlias *string `json:"team_alias"`
		} `json:"team_info"`
	}
	if err := json.Unmarshal(r.body, &info); err != nil {
		// A 2xx that is not LiteLLM's JSON: litellm.url points at
		// something else (the UI, another proxy). Retrying will not help.
		return "", false, &PermanentError{Status: r.status, Path: path,
			Message: "the answer is not LiteLLM's JSON (check litellm.url): " + bound(redact(string(r.body), c.key))}
	}
	if info.TeamInfo.TeamAlias == nil {
		return "", true, nil
	}
	return *info.TeamInfo.TeamAlias, true, nil
}

// CheckMasterKey makes one cheap authenticated call to tell whether the
// master key is accepted. It returns nil, an error wrapping ErrUnauthorized
// when LiteLLM rejects the key, or one wrapping ErrUnreachable when LiteLLM
// could not be asked.
func (c *Client) CheckMasterKey(ctx context.Context) error {
	const path = "/user/info"
	r, err := c.do(ctx, http.MethodGet, path, url.Values{"user_id": {checkUserID}}, nil, maxInfoBody)
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, c.base.Redacted(), err)
	}
	switch {
	case r.status >= 200 && r.status < 300, r.status == http.StatusNotFound:
		// 404: the key was accepted and the probe user does not exist,
		// which is the expected answer.
		return nil
	case r.status == http.StatusUnauthorized:
		return fmt.Errorf("%w by LiteLLM at %s (check litellm.master_key): %w", ErrUnauthorized, c.base.Redacted(), r.permanent(path))
	case r.status == http.StatusForbidden:
		// A valid virtual key without the proxy_admin role: LiteLLM accepts
		// it but refuses to show another user, and would refuse /team/new.
		return fmt.Errorf("%w by LiteLLM at %s: the key is valid but is not the master key (no proxy_admin role): %w",
			ErrUnauthorized, c.base.Redacted(), r.permanent(path))
	}
	return fmt.Errorf("litellm at %s: unexpected answer to the master-key check: %w", c.base.Redacted(), r.permanent(path))
}

// checkUserID is the user CheckMasterKey asks about; it should not exist.
const checkUserID = "teamgate-master-key-check"

// Errors CheckMasterKey wraps.
var (
	ErrUnauthorized = errors.New("litellm master key rejected")
	ErrUnreachable  = errors.New("litellm unreachable")
)
