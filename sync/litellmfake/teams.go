package litellmfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// memberJSON is LiteLLM's Member model.
type memberJSON struct {
	UserID    *string `json:"user_id"`
	UserEmail *string `json:"user_email"`
	Role      string  `json:"role"`
}

// decode reads a JSON body into v, answering 422 like FastAPI when it does
// not fit.
func decode(w http.ResponseWriter, body []byte, v any) bool {
	err := json.Unmarshal(body, v)
	if err == nil {
		return true
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		writeValidationError(w, []any{"body", te.Field}, "type_error", "Input should be a valid "+te.Type.String())
		return false
	}
	writeValidationError(w, []any{"body", 0}, "json_invalid", "JSON decode error")
	return false
}

func (s *Server) teamNew(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req struct {
		TeamID           *string        `json:"team_id"`
		TeamAlias        *string        `json:"team_alias"`
		Models           []string       `json:"models"`
		MaxBudget        *float64       `json:"max_budget"`
		BudgetDuration   *string        `json:"budget_duration"`
		TPMLimit         *int64         `json:"tpm_limit"`
		RPMLimit         *int64         `json:"rpm_limit"`
		Metadata         map[string]any `json:"metadata"`
		Blocked          bool           `json:"blocked"`
		MembersWithRoles []memberJSON   `json:"members_with_roles"`
	}
	if !decode(w, body, &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	id := deref(req.TeamID)
	if req.TeamID == nil {
		s.seq++
		id = fmt.Sprintf("team-%08d", s.seq)
	} else if _, ok := s.teams[id]; ok {
		writeWrappedHTTPError(w, http.StatusBadRequest, "error",
			fmt.Sprintf("Team id = %s already exists. Please use a different team id.", id))
		return
	}
	t := &Team{
		ID:             id,
		Alias:          deref(req.TeamAlias),
		MaxBudget:      req.MaxBudget,
		BudgetDuration: deref(req.BudgetDuration),
		Models:         req.Models,
		TPMLimit:       req.TPMLimit,
		RPMLimit:       req.RPMLimit,
		Blocked:        req.Blocked,
		Metadata:       req.Metadata,
	}
	for _, m := range req.MembersWithRoles {
		t.Members = append(t.Members, Member{UserID: deref(m.UserID), Role: m.Role})
	}
	// The caller becomes a team admin unless listed already; with the
	// master key the caller is "default_user_id".
	if t.memberIndex(DefaultUserID) < 0 {
		t.Members = append(t.Members, Member{UserID: DefaultUserID, Role: "admin"})
	}
	s.teams[id] = t
	s.order = append(s.order, id)
	writeJSON(w, http.StatusOK, t.json())
}

func (s *Server) teamUpdate(w http.ResponseWriter, _ *http.Request, body []byte) {
	var fields map[string]json.RawMessage
	if !decode(w, body, &fields) {
		return
	}
	var id string
	if raw, ok := fields["team_id"]; !ok || json.Unmarshal(raw, &id) != nil {
		writeValidationError(w, []any{"body", "team_id"}, "missing", "Field required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.teams[id]
	if !ok {
		writeDetailError(w, http.StatusNotFound, "Team not found, passed team_id="+id)
		return
	}
	// Only the fields sent change; null clears one (pydantic's
	// exclude_unset). Decode everything first so a bad field changes
	// nothing.
	next := t.clone()
	for name, raw := range fields {
		var err error
		switch name {
		case "team_alias":
			err = setString(raw, &next.Alias)
		case "budget_duration":
			err = setString(raw, &next.BudgetDuration)
		case "max_budget":
			err = setPtr(raw, &next.MaxBudget)
		case "tpm_limit":
			err = setPtr(raw, &next.TPMLimit)
		case "rpm_limit":
			err = setPtr(raw, &next.RPMLimit)
		case "models":
			next.Models = nil
			err = json.Unmarshal(raw, &next.Models)
		case "metadata":
			next.Metadata = nil
			err = json.Unmarshal(raw, &next.Metadata)
		case "blocked":
			err = json.Unmarshal(raw, &next.Blocked)
		}
		if err != nil {
			writeValidationError(w, []any{"body", name}, "type_error", err.Error())
			return
		}
	}
	*t = next
	writeJSON(w, http.StatusOK, map[string]any{"team_id": id, "data": t.json()})
}

func (s *Server) teamInfo(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.URL.Query().Get("team_id")
	if !r.URL.Query().Has("team_id") {
		writeProxyError(w, http.StatusUnprocessableEntity, "auth_error", "None",
			pyDict("message", "Malformed request. No team id passed in."))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.teams[id]
	if !ok {
		// team_info wraps its HTTPException as a ProxyException of type
		// auth_error, whatever the status.
		writeProxyError(w, http.StatusNotFound, "auth_error", "None",
			pyDict("message", fmt.Sprintf("Team not found, passed team id: %s.", id)))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"team_id":          id,
		"team_info":        t.json(),
		"keys":             []any{},
		"team_memberships": []any{},
	})
}

func (s *Server) teamBlock(blocked bool) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, body []byte) {
		var req struct {
			TeamID *string `json:"team_id"`
		}
		if !decode(w, body, &req) {
			return
		}
		if req.TeamID == nil {
			writeValidationError(w, []any{"body", "team_id"}, "missing", "Field required")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		t, ok := s.teams[*req.TeamID]
		if !ok {
			writeDetailError(w, http.StatusNotFound, "Team not found, passed team_id="+*req.TeamID)
			return
		}
		t.Blocked = blocked
		writeJSON(w, http.StatusOK, t.json())
	}
}

// notPremium is LiteLLM's CommonProxyErrors.not_premium_user.
const notPremium = "You must be a LiteLLM Enterprise user to use this feature. If you have a license please set `LITELLM_LICENSE` in your env. Get a 7 day trial key here: https://www.litellm.ai/#trial. \nPricing: https://www.litellm.ai/#pricing"

func (s *Server) memberAdd(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req struct {
		TeamID *string         `json:"team_id"`
		Member json.RawMessage `json:"member"`
	}
	if !decode(w, body, &req) {
		return
	}
	if req.TeamID == nil {
		writeValidationError(w, []any{"body", "team_id"}, "missing", "Field required")
		return
	}
	if len(req.Member) == 0 || string(req.Member) == "null" {
		writeDetailError(w, http.StatusBadRequest, "No member/members passed in")
		return
	}
	// member is one Member or a list of them.
	var members []memberJSON
	if err := json.Unmarshal(req.Member, &members); err != nil {
		var one memberJSON
		if err := json.Unmarshal(req.Member, &one); err != nil {
			writeValidationError(w, []any{"body", "member"}, "model_type", "Input should be a valid dictionary or list")
			return
		}
		members = []memberJSON{one}
	}
	for _, m := range members {
		if m.Role != "admin" && m.Role != "user" {
			writeValidationError(w, []any{"body", "member", "role"}, "literal_error", "Input should be 'admin' or 'user'")
			return
		}
		if deref(m.UserID) == "" && deref(m.UserEmail) == "" {
			writeValidationError(w, []any{"body", "member"}, "value_error", "Value error, Either user_id or user_email must be provided")
			return
		}
		if m.Role == "admin" {
			writeDetailError(w, http.StatusBadRequest, "Assigning team admins is a premium feature. "+notPremium)
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.teams[*req.TeamID]
	if !ok {
		writeDetailError(w, http.StatusNotFound, "Team not found for team_id="+*req.TeamID)
		return
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = s.resolveMember(m)
	}
	for _, id := range ids {
		if t.memberIndex(id) >= 0 {
			writeProxyError(w, http.StatusBadRequest, "team_member_already_in_team", "member",
				fmt.Sprintf("User=%s already in team. Existing members=%s", id, pyMembers(t.Members)))
			return
		}
	}
	// Like add_new_member, a user unknown to LiteLLM is created.
	var updated []map[string]any
	for i, id := range ids {
		u, ok := s.users[id]
		if !ok {
			u = &User{ID: id, Email: deref(members[i].UserEmail), Role: "internal_user"}
			s.users[id] = u
		}
		t.Members = append(t.Members, Member{UserID: id, Role: members[i].Role})
		updated = append(updated, u.json(s.teamsOf(id)))
	}
	out := t.json()
	out["updated_users"] = updated
	out["updated_team_memberships"] = []any{}
	writeJSON(w, http.StatusOK, out)
}

// resolveMember finds the user id a Member names (by id, else by email),
// or makes one up for a new user. Callers hold s.mu.
func (s *Server) resolveMember(m memberJSON) string {
	if id := deref(m.UserID); id != "" {
		return id
	}
	email := deref(m.UserEmail)
	for _, u := range s.users {
		if u.Email == email {
			return u.ID
		}
	}
	s.seq++
	return fmt.Sprintf("user-%08d", s.seq)
}

func (s *Server) memberDelete(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req struct {
		TeamID    *string `json:"team_id"`
		UserID    *string `json:"user_id"`
		UserEmail *string `json:"user_email"`
	}
	if !decode(w, body, &req) {
		return
	}
	if req.TeamID == nil {
		writeValidationError(w, []any{"body", "team_id"}, "missing", "Field required")
		return
	}
	if req.UserID == nil && req.UserEmail == nil {
		writeDetailError(w, http.StatusBadRequest, "Either user_id or user_email needs to be passed in")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.teams[*req.TeamID]
	if !ok {
		writeDetailError(w, http.StatusBadRequest, fmt.Sprintf("Team id=%s does not exist in db", *req.TeamID))
		return
	}
	before := len(t.Members)
	t.Members = slices.DeleteFunc(t.Members, func(m Member) bool {
		if req.UserID != nil && m.UserID == *req.UserID {
			return true
		}
		u, ok := s.users[m.UserID]
		return req.UserEmail != nil && ok && u.Email != "" && u.Email == *req.UserEmail
	})
	if len(t.Members) == before {
		writeDetailError(w, http.StatusBadRequest, "User not found in team")
		return
	}
	writeJSON(w, http.StatusOK, t.json())
}

func setString(raw json.RawMessage, dst *string) error {
	var v *string
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	*dst = deref(v)
	return nil
}

func setPtr[T any](raw json.RawMessage, dst **T) error {
	var v *T
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	*dst = v
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
