package litellmfake

import (
	"maps"
	"slices"
)

// Team is a team as the fake stores it.
type Team struct {
	ID             string
	Alias          string
	MaxBudget      *float64
	BudgetDuration string
	Models         []string
	TPMLimit       *int64
	RPMLimit       *int64
	Blocked        bool
	Members        []Member // members_with_roles, in the order they were added
	Metadata       map[string]any
}

// Member is one entry of a team's members_with_roles.
type Member struct {
	UserID string
	Role   string // "admin" or "user"
}

// User is a user as the fake stores it.
type User struct {
	ID             string
	Email          string
	SSOUserID      string
	Role           string
	MaxBudget      *float64
	BudgetDuration string
	Models         []string
	// KeysMinted counts the virtual keys /user/new created for this user
	// (it mints one unless auto_create_key is false).
	KeysMinted int
}

// DefaultUserID is the user id LiteLLM gives the master key; /team/new
// adds it to every team it creates as an admin.
const DefaultUserID = "default_user_id"

// Team returns a copy of the team with this id.
func (s *Server) Team(id string) (Team, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.teams[id]
	if !ok {
		return Team{}, false
	}
	return t.clone(), true
}

// Teams returns copies of all teams in creation order.
func (s *Server) Teams() []Team {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Team, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.teams[id].clone())
	}
	return out
}

// User returns a copy of the user with this id.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, false
	}
	return u.clone(), true
}

// Users returns copies of all users, sorted by id.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u.clone())
	}
	slices.SortFunc(out, func(a, b User) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// PutTeam stores a team as is (replacing one with the same id), for tests
// that start from a LiteLLM that already has data. No admin member is added.
func (s *Server) PutTeam(t Team) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.teams[t.ID]; !ok {
		s.order = append(s.order, t.ID)
	}
	c := t.clone()
	s.teams[t.ID] = &c
}

// PutUser stores a user as is (replacing one with the same id).
func (s *Server) PutUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := u.clone()
	s.users[u.ID] = &c
}

func (t *Team) clone() Team {
	c := *t
	c.MaxBudget = clonePtr(t.MaxBudget)
	c.TPMLimit = clonePtr(t.TPMLimit)
	c.RPMLimit = clonePtr(t.RPMLimit)
	c.Models = slices.Clone(t.Models)
	c.Members = slices.Clone(t.Members)
	c.Metadata = maps.Clone(t.Metadata)
	return c
}

func (u *User) clone() User {
	c := *u
	c.MaxBudget = clonePtr(u.MaxBudget)
	c.Models = slices.Clone(u.Models)
	return c
}

func (t *Team) memberIndex(userID string) int {
	return slices.IndexFunc(t.Members, func(m Member) bool { return m.UserID == userID })
}

// json renders the team as LiteLLM's LiteLLM_TeamTable.
func (t *Team) json() map[string]any {
	members := make([]map[string]any, len(t.Members))
	for i, m := range t.Members {
		members[i] = map[string]any{"user_id": m.UserID, "user_email": nil, "role": m.Role}
	}
	models := t.Models
	if models == nil {
		models = []string{}
	}
	meta := t.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	return map[string]any{
		"team_id":            t.ID,
		"team_alias":         nullIfEmpty(t.Alias),
		"organization_id":    nil,
		"admins":             []any{},
		"members":            []any{},
		"members_with_roles": members,
		"metadata":           meta,
		"tpm_limit":          t.TPMLimit,
		"rpm_limit":          t.RPMLimit,
		"max_budget":         t.MaxBudget,
		"budget_duration":    nullIfEmpty(t.BudgetDuration),
		"models":             models,
		"blocked":            t.Blocked,
		"spend":              0.0,
	}
}

// json renders the user as LiteLLM's LiteLLM_UserTable.
func (u *User) json(teams []string) map[string]any {
	models := u.Models
	if models == nil {
		models = []string{}
	}
	if teams == nil {
		teams = []string{}
	}
	return map[string]any{
		"user_id":         u.ID,
		"user_email":      nullIfEmpty(u.Email),
		"sso_user_id":     nullIfEmpty(u.SSOUserID),
		"user_role":       nullIfEmpty(u.Role),
		"max_budget":      u.MaxBudget,
		"budget_duration": nullIfEmpty(u.BudgetDuration),
		"models":          models,
		"teams":           teams,
		"spend":           0.0,
	}
}

// teamsOf lists the ids of the teams the user is a member of. Callers hold
// s.mu.
func (s *Server) teamsOf(userID string) []string {
	var out []string
	for _, id := range s.order {
		if s.teams[id].memberIndex(userID) >= 0 {
			out = append(out, id)
		}
	}
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
