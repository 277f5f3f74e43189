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
	// provisioned runs after a successful reconcile; nil when LiteLLM
	// provisioning is off (see provision.go).
	provisioned func(ctx context.Context, res teamsync.Result)
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
	if s.provisioned != nil {
		s.provisioned(ctx, res)
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
	sess, err := s.st.ActiveSession(ctx, id, now)
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
	prefs, err := s.st.UserPrefs(ctx, sess.UserID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return gateway.SessionRecord{}, gateway.Principal{}, err
	}
	p := gateway.Principal{UserID: u.ID, Email: u.Email, UPN: u.UPN, DisplayName: u.DisplayName, Role: u.UserRole,
		DefaultTeamID: prefs.DefaultTeamID, InAdminGroup: prefs.InAdminGroup}
	if u.ValidatedAt != nil {
		p.ValidatedAt = *u.ValidatedAt
	}
	for _, t := range teams {
		p.Teams = append(p.Teams, gateway.TeamRef{ID: t.ID, Alias: t.Alias})
	}
	rec := gateway.SessionRecord{ID: sess.ID, UserID: sess.UserID, CreatedAt: sess.CreatedAt, ExpiresAt: sess.ExpiresAt,
		LastSeenAt: sess.LastSeenAt, EndedReason: sess.EndedReason}
	return rec, p, nil
}

// revalidatorAdapter re-checks signed-in users for the gateway
// (session.revalidate_after) with the same code as the background job.
type revalidatorAdapter struct {
	recon   *teamsync.Reconciler
	metrics *metrics
}

func (a revalidatorAdapter) Revalidate(ctx context.Context, userID string) (bool, string, error) {
	res, err := a.recon.Recheck(ctx, userID, store.EventRevalidate)
	if errors.Is(err, teamsync.ErrUnknownUser) {
		return false, "", nil // no user row, so no sessions left to end
	}
	if err != nil {
		a.metrics.observeRevalidation("failed")
		return false, "", err
	}
	if res.Verdict != teamsync.VerdictOK {
		a.metrics.observeRevalidation(string(res.Verdict))
		return true, string(res.Verdict), nil
	}
	a.metrics.observeRevalidation("ok")
	return false, "", nil
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

func (d directoryAdapter) SyncEvents(ctx context.Context, userID, kind string, limit int) ([]gateway.AdminSyncEvent, error) {
	evs, err := d.st.SyncEvents(ctx, store.EventFilter{UserID: userID, Kind: kind, Limit: limit})
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
			Kind: e.Kind, Detail: e.Detail,
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

// keyAdapter keeps the gateway's generated assertion signing keys in the
// store, so that every replica signs with the same key.
type keyAdapter struct{ st store.Store }

func (k keyAdapter) SigningKeys(ctx context.Context) ([]gateway.SigningKey, error) {
	keys, err := k.st.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.SigningKey, len(keys))
	for i, sk := range keys {
		out[i] = gateway.SigningKey{ID: sk.ID, Algorithm: sk.Algorithm, Sealed: sk.PrivateKey, PublicJWK: sk.PublicJWK,
			CreatedAt: sk.CreatedAt, Active: sk.Active, ActivateAt: sk.ActivateAt, DeactivatedAt: sk.DeactivatedAt}
	}
	return out, nil
}

func (k keyAdapter) InsertSigningKey(ctx context.Context, sk gateway.SigningKey) (bool, error) {
	return k.st.InsertSigningKey(ctx, store.SigningKey{ID: sk.ID, Algorithm: sk.Algorithm, PrivateKey: sk.Sealed,
		PublicJWK: sk.PublicJWK, CreatedAt: sk.CreatedAt, Active: sk.Active, ActivateAt: sk.ActivateAt, DeactivatedAt: sk.DeactivatedAt})
}

func (k keyAdapter) ResealSigningKey(ctx context.Context, kid string, sealed []byte) error {
	return k.st.ResealSigningKey(ctx, kid, sealed)
}

func (k keyAdapter) ActivateSigningKey(ctx context.Context, kid string, now time.Time) error {
	return k.st.ActivateSigningKey(ctx, kid, now)
}

func (k keyAdapter) RecordSigningReplica(ctx context.Context, replica, kid string, now, forgetBefore time.Time) error {
	if !forgetBefore.IsZero() {
		if _, err := k.st.DeleteSigningReplicas(ctx, forgetBefore); err != nil {
			return err
		}
	}
	return k.st.RecordSigningReplica(ctx, store.SigningReplica{ID: replica, KeyID: kid, SeenAt: now})
}

var _ gateway.SigningKeyStore = keyAdapter{}

// outboxAdapter serves the LiteLLM provisioning outbox to the admin API.
type outboxAdapter struct{ st store.Store }

func (o outboxAdapter) ListOutbox(ctx context.Context, status string, limit int) ([]gateway.AdminOutboxOp, error) {
	ops, err := o.st.ListOutbox(ctx, store.OutboxFilter{Status: status, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]gateway.AdminOutboxOp, len(ops))
	for i, op := range ops {
		out[i] = gateway.AdminOutboxOp{
			ID: op.ID, Kind: op.Kind, TeamID: op.TeamID, UserID: op.UserID, Status: op.Status, Attempts: op.Attempts,
			NextAttemptAt: op.NextAttemptAt, LastError: op.LastError, Body: op.Body, CreatedAt: op.CreatedAt, UpdatedAt: op.UpdatedAt,
			SupersededBy: op.SupersededBy,
		}
	}
	return out, nil
}

// RetryOutbox requeues a parked operation, due at once.
func (o outboxAdapter) RetryOutbox(ctx context.Context, id int64) error {
	err := o.st.RequeueOutbox(ctx, id, time.Now())
	var superseded *store.SupersededError
	switch {
	case errors.As(err, &superseded):
		return &gateway.SupersededError{By: superseded.By, Delivered: superseded.Delivered}
	case errors.Is(err, store.ErrNotFound):
		return gateway.ErrNotFound
	case errors.Is(err, store.ErrConflict):
		return gateway.ErrNotParked
	}
	return err
}

var _ gateway.OutboxAdmin = outboxAdapter{}

// pagesAdapter serves teamgate's own pages (/teamgate/me, /teamgate/admin)
// from the store.
type pagesAdapter struct{ st store.Store }

func (a pagesAdapter) MyTeams(ctx context.Context, userID string) ([]gateway.PageTeam, error) {
	teams, err := a.st.UserTeams(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.PageTeam, len(teams))
	for i, t := range teams {
		out[i] = pageTeam(store.TeamSummary{Team: t})
	}
	return out, nil
}

func (a pagesAdapter) LastSync(ctx context.Context, userID string) (gateway.PageEvent, bool, error) {
	evs, err := a.st.FindSyncEvents(ctx, store.EventQuery{UserID: userID, ExcludeAdmin: true, Limit: 1})
	if err != nil || len(evs) == 0 {
		return gateway.PageEvent{}, false, err
	}
	return pageEvent(evs[0]), true, nil
}

func (a pagesAdapter) SetDefaultTeam(ctx context.Context, userID, teamID string) error {
	return notFound(a.st.SetDefaultTeam(ctx, userID, teamID))
}

func (a pagesAdapter) Teams(ctx context.Context, q gateway.PageQuery) ([]gateway.PageTeam, int, error) {
	f := store.TeamFilter{Query: q.Search, Limit: q.Limit, Offset: q.Offset}
	total, err := a.st.CountTeams(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	teams, err := a.st.TeamSummaries(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	out := make([]gateway.PageTeam, len(teams))
	for i, t := range teams {
		out[i] = pageTeam(t)
	}
	return out, total, nil
}

func (a pagesAdapter) Team(ctx context.Context, teamID string) (gateway.PageTeam, []gateway.PageMember, error) {
	t, err := a.st.Team(ctx, teamID)
	if err != nil {
		return gateway.PageTeam{}, nil, notFound(err)
	}
	ms, err := a.st.TeamMemberDetails(ctx, teamID)
	if err != nil {
		return gateway.PageTeam{}, nil, err
	}
	members := make([]gateway.PageMember, len(ms))
	for i, m := range ms {
		members[i] = gateway.PageMember{UserID: m.UserID, Email: m.Email, DisplayName: m.DisplayName,
			Role: m.Role, Source: m.Source, AddedAt: m.AddedAt}
	}
	team := pageTeam(store.TeamSummary{Team: t, Members: len(ms)})
	return team, members, nil
}

func (a pagesAdapter) Users(ctx context.Context, q gateway.PageQuery) ([]gateway.PageUser, int, error) {
	f := store.UserFilter{Query: q.Search, Limit: q.Limit, Offset: q.Offset}
	total, err := a.st.CountUsers(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	users, err := a.st.UserSummaries(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	out := make([]gateway.PageUser, len(users))
	for i, u := range users {
		out[i] = gateway.PageUser{UserID: u.ID, Email: u.Email, UPN: u.UPN, DisplayName: u.DisplayName,
			Role: u.UserRole, InAdminGroup: u.InAdminGroup, Teams: u.Teams, LastLoginAt: u.LastLoginAt}
	}
	return out, total, nil
}

func (a pagesAdapter) SyncEvents(ctx context.Context, q gateway.EventPageQuery) ([]gateway.PageEvent, int, error) {
	eq := store.EventQuery{UserID: q.UserID, Outcome: q.Outcome, Kind: q.Kind, ExcludeAdmin: q.ExcludeAdmin, Limit: q.Limit, Offset: q.Offset}
	total, err := a.st.CountSyncEvents(ctx, eq)
	if err != nil {
		return nil, 0, err
	}
	evs, err := a.st.FindSyncEvents(ctx, eq)
	if err != nil {
		return nil, 0, err
	}
	out := make([]gateway.PageEvent, len(evs))
	for i, e := range evs {
		out[i] = pageEvent(e)
	}
	return out, total, nil
}

func (a pagesAdapter) TeamAliases(ctx context.Context, ids []string) (map[string]string, error) {
	return a.st.TeamAliases(ctx, ids)
}

func (a pagesAdapter) AddMember(ctx context.Context, teamID, login, actor string, now time.Time) (string, error) {
	u, err := a.st.UserByLogin(ctx, login)
	if err != nil {
		return "", notFound(err)
	}
	// Role "user", as reconcile adds members: LiteLLM's team "admin" role
	// needs an Enterprise licence.
	return u.ID, notFound(a.st.AddMemberAsAdmin(ctx, teamID, u.ID, "user", actor, now))
}

func (a pagesAdapter) RemoveMember(ctx context.Context, teamID, userID, actor string, now time.Time) error {
	return notFound(a.st.RemoveMemberAsAdmin(ctx, teamID, userID, actor, now))
}

func pageTeam(t store.TeamSummary) gateway.PageTeam {
	return gateway.PageTeam{ID: t.ID, Alias: t.Alias, MaxBudget: t.MaxBudget, BudgetDuration: t.BudgetDuration,
		Models: t.Models, TPMLimit: t.TPMLimit, RPMLimit: t.RPMLimit, Assigned: t.Assigned,
		Members: t.Members, UpdatedAt: t.UpdatedAt}
}

func pageEvent(e store.LoggedEvent) gateway.PageEvent {
	return gateway.PageEvent{ID: e.ID, UserID: e.UserID, UserEmail: e.UserEmail, UserName: e.DisplayName, At: e.At,
		TeamsCreated: e.TeamsCreated, TeamsRenamed: e.TeamsRenamed, TeamsUnassigned: e.TeamsUnassigned,
		MembershipsAdded: e.MembershipsAdded, MembershipsRemoved: e.MembershipsRemoved,
		Duration: e.Duration, Outcome: e.Outcome, Error: e.Error, Actor: e.Actor, Kind: e.Kind, Detail: e.Detail}
}

// Backlog gives the admin page exact outbox counts (see
// gateway.BacklogSource); the oldest pending time is left unknown.
func (o outboxAdapter) Backlog(ctx context.Context) (gateway.Backlog, error) {
	pending, parked, err := o.st.OutboxStats(ctx)
	return gateway.Backlog{Pending: pending, Parked: parked}, err
}

var (
	_ gateway.PageSource    = pagesAdapter{}
	_ gateway.BacklogSource = outboxAdapter{}
)

// TouchSession records a session's activity (session.idle_timeout).
func (s sessionAdapter) TouchSession(ctx context.Context, id string, at time.Time) error {
	return s.st.TouchSession(ctx, id, at)
}

// RevokeUserSessions deletes every session of a user ("sign out everywhere").
func (s sessionAdapter) RevokeUserSessions(ctx context.Context, userID string) (int, error) {
	n, err := s.st.DeleteUserSessions(ctx, userID)
	return int(n), err
}

var (
	_ gateway.SessionActivityStore = sessionAdapter{}
	_ gateway.UserSessionRevoker   = sessionAdapter{}
)
