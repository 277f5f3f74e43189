package main

import (
	"context"
	"errors"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/teamsync"
)

// The gateway declares the small interfaces it needs (gateway/ports.go);
// these adapters satisfy them with the sync engine and the store, so neither
// side imports the other.

// syncAdapter runs a reconcile at sign-in and classifies its failure.
type syncAdapter struct {
	recon   *teamsync.Reconciler
	gw      *gateway.Gateway // set after the gateway is built
	metrics *metrics
}

func (s *syncAdapter) Sync(ctx context.Context, id gateway.Identity) error {
	start := time.Now()
	res, err := s.recon.Reconcile(ctx, teamsync.Identity{
		UserID: id.UserID, Email: id.Email, UPN: id.UPN, DisplayName: id.DisplayName,
	})
	if s.metrics != nil {
		s.metrics.observeReconcile(res, time.Since(start), err)
	}
	if err != nil {
		return classifySyncError(err)
	}
	if s.gw != nil {
		s.gw.InvalidateUser(id.UserID) // other sessions of this user see the new teams now
	}
	return nil
}

func classifySyncError(err error) *gateway.SyncError {
	if perm, ok := teamsync.IsPermission(err); ok {
		return &gateway.SyncError{Kind: gateway.SyncPermission, Permission: perm, Err: err}
	}
	var te *teamsync.Error
	if errors.Is(err, graph.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &te) && te.Stage == teamsync.StageGraph) {
		return &gateway.SyncError{Kind: gateway.SyncUnavailable, Err: err}
	}
	return &gateway.SyncError{Kind: gateway.SyncInternal, Err: err}
}

// sessionAdapter keeps sessions in the store.
type sessionAdapter struct{ st store.Store }

func (s sessionAdapter) CreateSession(ctx context.Context, r gateway.SessionRecord) error {
	return s.st.CreateSession(ctx, store.Session{ID: r.ID, UserID: r.UserID, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt})
}

func (s sessionAdapter) LookupSession(ctx context.Context, id string, now time.Time) (gateway.SessionRecord, gateway.Principal, error) {
	sess, err := s.st.Session(ctx, id, now)
	if errors.Is(err, store.ErrNotFound) {
		return gateway.SessionRecord{}, gateway.Principal{}, gateway.ErrNoSession
	}
	if err != nil {
		return gateway.SessionRecord{}, gateway.Principal{}, err
	}
	u, err := s.st.User(ctx, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return gateway.SessionRecord{}, gateway.Principal{}, gateway.ErrNoSession
	}
	if err != nil {
		return gateway.SessionRecord{}, gateway.Principal{}, err
	}
	teams, err := s.st.UserTeams(ctx, sess.UserID)
	if err != nil {
		return gateway.SessionRecord{}, gateway.Principal{}, err
	}
	p := gateway.Principal{UserID: u.ID, Email: u.Email, UPN: u.UPN, DisplayName: u.DisplayName, Role: u.UserRole}
	for _, t := range teams {
		p.Teams = append(p.Teams, gateway.TeamRef{ID: t.ID, Alias: t.Alias})
	}
	rec := gateway.SessionRecord{ID: sess.ID, UserID: sess.UserID, CreatedAt: sess.CreatedAt, ExpiresAt: sess.ExpiresAt}
	return rec, p, nil
}

func (s sessionAdapter) DeleteSession(ctx context.Context, id string) error {
	err := s.st.DeleteSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// directoryAdapter serves the admin API from the store.
type directoryAdapter struct{ st store.Store }

func (d directoryAdapter) Teams(ctx context.Context) ([]gateway.AdminTeam, error) {
	teams, err := d.st.Teams(ctx, store.TeamFilter{})
	if err != nil {
		return nil, err
	}
	members, err := d.st.MembersOfTeams(ctx, nil)
	if err != nil {
		return nil, err
	}
	byTeam := map[string][]gateway.AdminMember{}
	for _, m := range members {
		byTeam[m.TeamID] = append(byTeam[m.TeamID], adminMember(m))
	}
	out := make([]gateway.AdminTeam, 0, len(teams))
	for _, t := range teams {
		out = append(out, adminTeam(t, byTeam[t.ID]))
	}
	return out, nil
}

func (d directoryAdapter) Team(ctx context.Context, id string) (gateway.AdminTeam, error) {
	t, err := d.st.Team(ctx, id)
	if err != nil {
		return gateway.AdminTeam{}, notFound(err)
	}
	ms, err := d.st.TeamMembers(ctx, id)
	if err != nil {
		return gateway.AdminTeam{}, err
	}
	members := make([]gateway.AdminMember, 0, len(ms))
	for _, m := range ms {
		members = append(members, adminMember(m))
	}
	return adminTeam(t, members), nil
}

func (d directoryAdapter) User(ctx context.Context, id string) (gateway.AdminUser, error) {
	u, err := d.st.User(ctx, id)
	if err != nil {
		return gateway.AdminUser{}, notFound(err)
	}
	teams, err := d.st.UserTeams(ctx, id)
	if err != nil {
		return gateway.AdminUser{}, err
	}
	ids := make([]string, 0, len(teams))
	for _, t := range teams {
		ids = append(ids, t.ID)
	}
	return gateway.AdminUser{
		UserID: u.ID, UserEmail: u.Email, UPN: u.UPN, DisplayName: u.DisplayName, UserRole: u.UserRole,
		MaxBudget: u.MaxBudget, BudgetDuration: optional(u.BudgetDuration), Models: nonNil(u.Models),
		Teams: ids, LastLoginAt: u.LastLoginAt,
	}, nil
}

func (d directoryAdapter) SyncEvents(ctx context.Context, userID string, limit int) ([]gateway.AdminSyncEvent, error) {
	evs, err := d.st.SyncEvents(ctx, store.EventFilter{UserID: userID, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]gateway.AdminSyncEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, gateway.AdminSyncEvent{
			ID: e.ID, UserID: e.UserID, At: e.At,
			TeamsCreated: nonNil(e.TeamsCreated), TeamsRenamed: nonNil(e.TeamsRenamed), TeamsUnassigned: nonNil(e.TeamsUnassigned),
			MembershipsAdded: nonNil(e.MembershipsAdded), MembershipsRemoved: nonNil(e.MembershipsRemoved),
			DurationMS: float64(e.Duration) / float64(time.Millisecond), Outcome: e.Outcome, Error: e.Error,
		})
	}
	return out, nil
}

func adminTeam(t store.Team, members []gateway.AdminMember) gateway.AdminTeam {
	if members == nil {
		members = []gateway.AdminMember{}
	}
	return gateway.AdminTeam{
		TeamID: t.ID, TeamAlias: t.Alias, MaxBudget: t.MaxBudget, BudgetDuration: optional(t.BudgetDuration),
		Models: nonNil(t.Models), TPMLimit: t.TPMLimit, RPMLimit: t.RPMLimit, Assigned: t.Assigned,
		Members: members, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

func adminMember(m store.Membership) gateway.AdminMember {
	return gateway.AdminMember{UserID: m.UserID, Role: m.Role, Source: m.Source}
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return gateway.ErrNotFound
	}
	return err
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nonNil makes JSON lists [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
