// Package teamsync reconciles a user's Entra groups into teamgate's teams
// and memberships at every sign-in: Graph is read first, then the diff
// (a pure function, see Diff) is computed and applied in one transaction.
package teamsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
)

// Directory is the part of Microsoft Graph a reconcile reads.
// *graph.Client satisfies it.
type Directory interface {
	User(ctx context.Context, userID string) (graph.UserProfile, error)
	UserGroups(ctx context.Context, userID string) ([]graph.Group, error)
	// AppGroupsAt returns the groups assigned to the Enterprise App and
	// when that list was fetched from Graph (it may be cached).
	AppGroupsAt(ctx context.Context) ([]graph.Group, time.Time, error)
	HasServicePrincipal() bool
}

// Stage says which side of a reconcile failed.
type Stage string

const (
	StageGraph    Stage = "graph"
	StageDatabase Stage = "database"
)

// Error is returned by Reconcile. Unwrap it to reach *graph.PermissionError,
// graph.ErrUnavailable or the database error.
type Error struct {
	Stage Stage
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("reconcile: %s: %v", e.Stage, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Identity is the signed-in user as the ID token describes them. The
// profile read from Graph wins where both have a value.
type Identity struct {
	UserID      string
	Email       string
	UPN         string
	DisplayName string
}

// Changes is what a reconcile actually changed (ids, sorted).
type Changes struct {
	TeamsCreated       []string
	TeamsRenamed       []string
	TeamsAssigned      []string
	TeamsUnassigned    []string
	MembershipsAdded   []string
	MembershipsRemoved []string
}

// Result describes a successful reconcile.
type Result struct {
	User        store.User
	UserCreated bool
	Changes     Changes
	Duration    time.Duration
	// OutboxIDs are the LiteLLM operations this reconcile enqueued (with
	// provisioning enabled), in delivery order.
	OutboxIDs []int64
}

// Reconciler runs reconciles. It is safe for concurrent use.
type Reconciler struct {
	dir Directory
	st  store.Store
	cfg Config
	log *slog.Logger
	now func() time.Time

	prov Provisioning // LiteLLM provisioning (provision.go)

	adminGroups map[string]bool // admin.group_ids (admingroups.go)
}

// Option configures a Reconciler.
type Option func(*Reconciler)

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Reconciler) { r.log = l } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(r *Reconciler) { r.now = now } }

// New returns a Reconciler. cfg must have been validated.
func New(dir Directory, st store.Store, cfg Config, opts ...Option) *Reconciler {
	r := &Reconciler{dir: dir, st: st, cfg: cfg, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(r)
	}
	r.log = r.log.With("component", "teamsync")
	return r
}

// Reconcile brings the user's teams and memberships in line with Entra.
// On error nothing was written except a sync event recording the failure.
func (r *Reconciler) Reconcile(ctx context.Context, id Identity) (Result, error) {
	start := r.now()
	obs, profile, err := r.observe(ctx, id.UserID)
	if err != nil {
		err = &Error{Stage: StageGraph, Err: err}
		r.recordFailure(ctx, id.UserID, store.EventSignIn, start, err)
		return Result{}, err
	}
	ident := store.UserIdentity{
		ID:          id.UserID,
		Email:       userEmail(profile, id),
		UPN:         firstNonEmpty(profile.UserPrincipalName, id.UPN),
		DisplayName: firstNonEmpty(profile.DisplayName, id.DisplayName),
	}

	var res Result
	err = r.st.InTx(ctx, func(tx store.Tx) error {
		res = Result{} // InTx may call us again after a transient conflict
		now := r.now()
		var err error
		res.User, res.UserCreated, err = tx.UpsertUser(ctx, ident, r.cfg.DefaultInternalUserParams.storeParams(), now)
		if err != nil {
			return fmt.Errorf("upsert user: %w", err)
		}
		if err := r.recordAdminGroup(ctx, tx, id.UserID, obs.UserGroups); err != nil {
			return err
		}
		cur, err := readCurrent(ctx, tx, obs, id.UserID)
		if err != nil {
			return err
		}
		plan := Diff(obs, cur, r.cfg.DefaultTeamParams.storeParams())
		if res.Changes, err = apply(ctx, tx, plan, id.UserID, now); err != nil {
			return err
		}
		if res.OutboxIDs, err = r.enqueue(ctx, tx, res, plan); err != nil {
			return err
		}
		res.Duration = r.now().Sub(start)
		return tx.InsertSyncEvent(ctx, event(id.UserID, start, res.Duration, res.Changes, nil))
	})
	if err != nil {
		err = &Error{Stage: StageDatabase, Err: err}
		r.recordFailure(ctx, id.UserID, store.EventSignIn, start, err)
		return Result{}, err
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "reconciled",
		slog.String("user_id", id.UserID),
		slog.Bool("user_created", res.UserCreated),
		slog.Int("teams_created", len(res.Changes.TeamsCreated)),
		slog.Int("teams_renamed", len(res.Changes.TeamsRenamed)),
		slog.Int("teams_unassigned", len(res.Changes.TeamsUnassigned)),
		slog.Int("memberships_added", len(res.Changes.MembershipsAdded)),
		slog.Int("memberships_removed", len(res.Changes.MembershipsRemoved)),
		slog.Int("litellm_ops", len(res.OutboxIDs)),
		slog.Duration("duration", res.Duration))
	return res, nil
}

// observe reads everything the reconcile needs from Graph, concurrently.
func (r *Reconciler) observe(ctx context.Context, userID string) (Observed, graph.UserProfile, error) {
	var obs Observed
	var profile graph.UserProfile
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		profile, err = r.dir.User(gctx, userID)
		return err
	})
	g.Go(func() error {
		var err error
		obs.UserGroups, err = r.dir.UserGroups(gctx, userID)
		return err
	})
	if r.dir.HasServicePrincipal() {
		obs.AppScoped = true
		g.Go(func() error {
			var err error
			obs.AppGroups, obs.AppFetchedAt, err = r.dir.AppGroupsAt(gctx)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return Observed{}, graph.UserProfile{}, err
	}
	if err := checkNames(obs); err != nil {
		return Observed{}, graph.UserProfile{}, err
	}
	return obs, profile, nil
}

// readCurrent loads the state Diff needs, with a fixed number of statements.
func readCurrent(ctx context.Context, tx store.Tx, obs Observed, userID string) (Current, error) {
	var cur Current
	var err error
	if cur.Memberships, err = tx.UserMemberships(ctx, userID); err != nil {
		return cur, fmt.Errorf("read memberships: %w", err)
	}
	if obs.AppScoped {
		if cur.AssignedIDs, err = tx.AssignedTeamIDs(ctx); err != nil {
			return cur, fmt.Errorf("read assigned teams: %w", err)
		}
	}
	teams, err := tx.TeamsByID(ctx, referencedTeams(obs, cur.Memberships, cur.AssignedIDs))
	if err != nil {
		return cur, fmt.Errorf("read teams: %w", err)
	}
	cur.Teams = make(map[string]store.Team, len(teams))
	for _, t := range teams {
		cur.Teams[t.ID] = t
	}
	return cur, nil
}

// apply writes the plan; each step reports what it actually changed, which
// under concurrent sign-ins may be less than planned.
func apply(ctx context.Context, tx store.Tx, p Plan, userID string, now time.Time) (Changes, error) {
	var c Changes
	var err error
	if len(p.Create) > 0 {
		if c.TeamsCreated, err = tx.InsertTeams(ctx, p.Create, now); err != nil {
			return c, fmt.Errorf("create teams: %w", err)
		}
	}
	if len(p.Rename) > 0 {
		if c.TeamsRenamed, err = tx.RenameTeams(ctx, p.Rename, now); err != nil {
			return c, fmt.Errorf("rename teams: %w", err)
		}
	}
	if len(p.Assign) > 0 {
		if c.TeamsAssigned, err = tx.SetAssigned(ctx, p.Assign, true, now); err != nil {
			return c, fmt.Errorf("assign teams: %w", err)
		}
	}
	if len(p.Unassign) > 0 {
		if c.TeamsUnassigned, err = tx.SetAssigned(ctx, p.Unassign, false, now); err != nil {
			return c, fmt.Errorf("unassign teams: %w", err)
		}
	}
	if len(p.AddMemberships) > 0 {
		if c.MembershipsAdded, err = tx.AddMemberships(ctx, userID, p.AddMemberships, "user", store.SourceEntra, now); err != nil {
			return c, fmt.Errorf("add memberships: %w", err)
		}
	}
	if len(p.RemoveMemberships) > 0 {
		if c.MembershipsRemoved, err = tx.RemoveMemberships(ctx, userID, p.RemoveMemberships, store.SourceEntra); err != nil {
			return c, fmt.Errorf("remove memberships: %w", err)
		}
	}
	return c, nil
}

func (r *Reconciler) recordFailure(ctx context.Context, userID, kind string, start time.Time, cause error) {
	d := r.now().Sub(start)
	r.log.LogAttrs(ctx, slog.LevelError, "reconcile failed",
		slog.String("user_id", userID), slog.String("kind", kind), slog.Duration("duration", d), slog.String("error", cause.Error()))
	// The request context may be what failed; the event still deserves a try.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	e := event(userID, start, d, Changes{}, cause)
	e.Kind = kind
	if err := r.st.RecordSyncEvent(ctx, e); err != nil {
		r.log.LogAttrs(ctx, slog.LevelWarn, "could not record failed sync event",
			slog.String("user_id", userID), slog.String("error", err.Error()))
	}
}

func event(userID string, at time.Time, d time.Duration, c Changes, cause error) store.SyncEvent {
	e := store.SyncEvent{
		UserID:             userID,
		At:                 at,
		TeamsCreated:       c.TeamsCreated,
		TeamsRenamed:       c.TeamsRenamed,
		TeamsUnassigned:    c.TeamsUnassigned,
		MembershipsAdded:   c.MembershipsAdded,
		MembershipsRemoved: c.MembershipsRemoved,
		Duration:           d,
		Outcome:            "ok",
	}
	if cause != nil {
		e.Outcome, e.Error = "error", cause.Error()
	}
	return e
}

// userEmail follows LiteLLM: the lower-cased mail, else the UPN.
func userEmail(p graph.UserProfile, id Identity) string {
	return strings.ToLower(firstNonEmpty(p.Mail, p.UserPrincipalName, id.Email, id.UPN))
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// IsPermission reports whether err means a missing Graph permission, and which.
func IsPermission(err error) (string, bool) {
	var pe *graph.PermissionError
	if errors.As(err, &pe) {
		return pe.Permission, true
	}
	return "", false
}
