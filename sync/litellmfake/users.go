package litellmfake

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// userRoles are LiteLLM's LitellmUserRoles values /user/new accepts.
var userRoles = []string{"proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer", "team", "customer"}

func (s *Server) userNew(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req struct {
		UserID         *string  `json:"user_id"`
		UserEmail      *string  `json:"user_email"`
		SSOUserID      *string  `json:"sso_user_id"`
		UserRole       *string  `json:"user_role"`
		MaxBudget      *float64 `json:"max_budget"`
		BudgetDuration *string  `json:"budget_duration"`
		Models         []string `json:"models"`
		AutoCreateKey  *bool    `json:"auto_create_key"`
	}
	if !decode(w, body, &req) {
		return
	}
	if req.UserRole != nil && !slices.Contains(userRoles, *req.UserRole) {
		writeValidationError(w, []any{"body", "user_role"}, "enum",
			"Input should be 'proxy_admin', 'proxy_admin_viewer', 'internal_user', 'internal_user_viewer', 'team' or 'customer'")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	// v1.102 refuses a duplicate user_id, then a duplicate email
	// (case-insensitively), with 409 through handle_exception_on_proxy.
	id := strings.TrimSpace(deref(req.UserID))
	if _, ok := s.users[id]; ok && id != "" {
		writeWrappedHTTPError(w, http.StatusConflict, "error", fmt.Sprintf("User with id %s already exists", id))
		return
	}
	if email := strings.TrimSpace(deref(req.UserEmail)); email != "" {
		for _, u := range s.users {
			if strings.EqualFold(u.Email, email) {
				writeWrappedHTTPError(w, http.StatusConflict, "error", fmt.Sprintf("User with email %s already exists", u.Email))
				return
			}
		}
	}
	if id == "" {
		s.seq++
		id = fmt.Sprintf("user-%08d", s.seq)
	}
	u := &User{
		ID:             id,
		Email:          deref(req.UserEmail),
		SSOUserID:      deref(req.SSOUserID),
		Role:           deref(req.UserRole),
		MaxBudget:      req.MaxBudget,
		BudgetDuration: deref(req.BudgetDuration),
		Models:         req.Models,
	}
	// auto_create_key defaults to true: a key is minted and returned.
	var key any
	if req.AutoCreateKey == nil || *req.AutoCreateKey {
		s.seq++
		key = fmt.Sprintf("sk-fake%016d", s.seq)
		u.KeysMinted++
	}
	s.users[id] = u
	out := u.json(nil)
	out["key"] = key
	out["expires"] = nil
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) userInfo(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !r.URL.Query().Has("user_id") {
		// The master key without user_id: the admin's overview.
		writeJSON(w, http.StatusOK, map[string]any{
			"user_id":   nil,
			"user_info": map[string]any{"user_role": "proxy_admin"},
			"keys":      []any{},
			"teams":     s.teamObjects(s.order),
		})
		return
	}
	id := r.URL.Query().Get("user_id")
	u, ok := s.users[id]
	if !ok {
		writeProxyError(w, http.StatusNotFound, "internal_server_error", "None", fmt.Sprintf("User %s not found", id))
		return
	}
	teams := s.teamsOf(id)
	writeJSON(w, http.StatusOK, map[string]any{
		"user_id":   id,
		"user_info": u.json(teams),
		"keys":      []any{},
		"teams":     s.teamObjects(teams),
	})
}

// teamObjects renders teams by id. Callers hold s.mu.
func (s *Server) teamObjects(ids []string) []map[string]any {
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.teams[id].json())
	}
	return out
}
