package teamsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
)

// A sign-in is not the only time teamgate asks Graph about a user: a
// session's re-validation and the background job re-check users who did
// not sign in. A re-check reads the same things as a sign-in (profile,
// groups, the app's assignments), decides whether the user may keep their
// sessions, and applies the same Diff in the same kind of transaction, but
// it never creates the user and never counts as a sign-in.

// CheckDirectory is the part of Graph a re-check reads beyond a sign-in's.
// *graph.Client satisfies it.
type CheckDirectory interface {
	Directory
	// AppAssignments returns the app's assigned groups and users and
	// whether the app requires assignment; fresh bypasses the cache.
	AppAssignments(ctx context.Context, fresh bool) (graph.AppAssignments, error)
}

// Verdict is what a re-check decided about a user's sessions.
type Verdict string

const (
	// VerdictOK: the user may keep their sessions.
	VerdictOK Verdict = ""
	// VerdictDisabled: the account is disabled in Entra.
	VerdictDisabled Verdict = "account_disabled"
	// VerdictDeleted: the account no longer exists in Entra.
	VerdictDeleted Verdict = "account_deleted"
	// VerdictUnassigned: the app requires assignment and the user is
	// assigned neither directly nor through one of their groups.
	VerdictUnassigned Verdict = "not_assigned"
)

// ErrUnknownUser is returned by Recheck for a user teamgate has never
// stored (nothing to re-check; they are created at their first sign-in).
var ErrUnknownUser = errors.New("teamsync: user not known to teamgate")

// RecheckResult describes a successful re-check.
type RecheckResult struct {
	Result
	Verdict Verdict
	// SessionsEnded counts the user's sessions this re-check ended.
	SessionsEnded int64
}

// Recheck re-reads the user from Graph and brings their memberships in
// line, as a sign-in would, then ends their sessions when the verdict is
// not VerdictOK. kind is the sync event kind (store.EventRevalidate or
// store.EventBackground). On a Graph error nothing is written (a
// background run records it in its own event) and the error is logged;
// the caller decides what an outage means. Re-validations are retried
// every few seconds per user while Graph is down, so recording each failed
// one would flood the sync log.
func (r *Reconciler) Recheck(ctx context.Context, userID, kind string) (RecheckResult, error) {
	start := r.now()
	dir, ok := r.dir.(CheckDirectory)
	if !ok {
		return RecheckResult{}, errors.New("teamsync: the directory cannot re-check users (it does not implement CheckDirectory)")
	}
	obs, verdict, err := r.observeRecheck(ctx, dir, userID)
	if err != nil {
		err = &Error{Stage: StageGraph, Err: err}
		r.log.LogAttrs(ctx, slog.LevelWarn, "re-check failed",
			slog.String("user_id", userID), slog.String("kind", kind), slog.String("error", err.Error()))
		return RecheckResult{}, err
	}
	res, err := r.applyKnown(ctx, userID, kind, start, obs,
		func(ctx context.Context, tx store.Tx, now time.Time) error {
			if verdict == VerdictDeleted {
				return nil
			}
			if err := r.recordAdminGroup(ctx, tx, userID, obs.UserGroups); err != nil {
				return err
			}
			return tx.SetUserValidated(ctx, userID, now)
		}, string(verdict))
	if err != nil {
		return RecheckResult{}, err
	}
	out := RecheckResult{Result: res, Verdict: verdict}
	if verdict != VerdictOK {
		// After the commit: on SQLite a Store write inside the transaction
		// would wait for the connection the transaction holds.
		n, err := r.st.EndUserSessions(ctx, userID, string(verdict), r.now())
		if err != nil {
			err = &Error{Stage: StageDatabase, Err: fmt.Errorf("end sessions: %w", err)}
			r.recordFailure(ctx, userID, kind, start, err)
			return out, err
		}
		out.SessionsEnded = n
		r.log.LogAttrs(ctx, slog.LevelWarn, "sessions ended by re-check",
			slog.String("user_id", userID), slog.String("kind", kind),
			slog.String("reason", string(verdict)), slog.Int64("sessions", n))
	}
	return out, nil
}

// observeRecheck reads the profile, groups and assignments concurrently.
// A deleted account answers 404 everywhere: that is a verdict, not an
// error, and it has no groups.
func (r *Reconciler) observeRecheck(ctx context.Context, dir CheckDirectory, userID string) (Observed, Verdict, error) {
	var (
		wg                          sync.WaitGroup
		profile                     graph.UserProfile
		groups                      []graph.Group
		app                         graph.AppAssignments
		profileErr, groupsErr, aErr error
	)
	appScoped := dir.HasServicePrincipal()
	wg.Add(2)
	go func() { defer wg.Done(); profile, profileErr = dir.User(ctx, userID) }()
	go func() { defer wg.Done(); groups, groupsErr = dir.UserGroups(ctx, userID) }()
	if appScoped {
		wg.Add(1)
		go func() { defer wg.Done(); app, aErr = dir.AppAssignments(ctx, false) }()
	}
	wg.Wait()
	if aErr != nil {
		return Observed{}, VerdictOK, aErr
	}
	obs := Observed{AppScoped: appScoped, AppGroups: app.Groups, AppFetchedAt: app.FetchedAt}
	if errors.Is(profileErr, graph.ErrUserNotFound) {
		return obs, VerdictDeleted, checkNames(obs)
	}
	if err := errors.Join(profileErr, groupsErr); err != nil {
		return Observed{}, VerdictOK, err
	}
	obs.UserGroups = groups
	if err := checkNames(obs); err != nil {
		return Observed{}, VerdictOK, err
	}
	switch {
	case profile.AccountEnabled != nil && !*profile.AccountEnabled:
		return obs, VerdictDisabled, nil
	case appScoped && app.AssignmentRequired && !assigned(userID, groups, app):
		return obs, VerdictUnassigned, nil
	}
	return obs, VerdictOK, nil
}

// assigned reports whether the user is assigned to the app directly or
// through one of their groups.
func assigned(userID string, groups []graph.Group, app graph.AppAssignments) bool {
	if _, ok := slices.BinarySearch(app.UserIDs, userID); ok {
		return true
	}
	for _, g := range groups {
		if slices.ContainsFunc(app.Groups, func(a graph.Group) bool { return a.ID == g.ID }) {
			return true
		}
	}
	return false
}

// checkNames refuses groups without names: Graph answered in its "limited
// information" form, and a team called "" must never be created.
func checkNames(obs Observed) error {
	for _, list := range [][]graph.Group{obs.UserGroups, obs.AppGroups, obs.Known} {
		for _, g := range list {
			if g.ID == "" || strings.TrimSpace(g.DisplayName) == "" {
				return &graph.PermissionError{Permission: graph.PermGroupMemberReadAll, Endpoint: "groups", Status: 200}
			}
		}
	}
	return nil
}

// applyKnown is the transaction of a re-check or of a background update of
// one user: lock the (existing) user, diff what Graph said (obs) against
// the database, apply, enqueue the LiteLLM operations and record an event
// when something changed or note is set. extra, if set, runs inside the
// transaction after the diff is applied.
func (r *Reconciler) applyKnown(ctx context.Context, userID, kind string, start time.Time, obs Observed,
	extra func(context.Context, store.Tx, time.Time) error, note string) (Result, error) {
	var res Result
	err := r.st.InTx(ctx, func(tx store.Tx) error {
		res = Result{}
		now := r.now()
		var err error
		if res.User, err = tx.LockUser(ctx, userID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return ErrUnknownUser
			}
			return fmt.Errorf("lock user: %w", err)
		}
		cur, err := readCurrent(ctx, tx, obs, userID)
		if err != nil {
			return err
		}
		plan := Diff(obs, cur, r.cfg.DefaultTeamParams.storeParams())
		if res.Changes, err = apply(ctx, tx, plan, userID, now); err != nil {
			return err
		}
		if res.OutboxIDs, err = r.enqueue(ctx, tx, res, plan); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(ctx, tx, now); err != nil {
				return err
			}
		}
		res.Duration = r.now().Sub(start)
		if res.Changes.empty() && note == "" {
			return nil
		}
		e := event(userID, start, res.Duration, res.Changes, nil)
		e.Kind, e.Detail = kind, note
		return tx.InsertSyncEvent(ctx, e)
	})
	if errors.Is(err, ErrUnknownUser) {
		return Result{}, err
	}
	if err != nil {
		err = &Error{Stage: StageDatabase, Err: err}
		r.recordFailure(ctx, userID, kind, start, err)
		return Result{}, err
	}
	if !res.Changes.empty() {
		r.log.LogAttrs(ctx, slog.LevelInfo, "re-checked",
			slog.String("user_id", userID), slog.String("kind", kind),
			slog.Int("teams_created", len(res.Changes.TeamsCreated)),
			slog.Int("teams_renamed", len(res.Changes.TeamsRenamed)),
			slog.Int("teams_unassigned", len(res.Changes.TeamsUnassigned)),
			slog.Int("memberships_added", len(res.Changes.MembershipsAdded)),
			slog.Int("memberships_removed", len(res.Changes.MembershipsRemoved)),
			slog.Int("litellm_ops", len(res.OutboxIDs)))
	}
	return res, nil
}

// empty reports whether nothing changed.
func (c Changes) empty() bool {
	return len(c.TeamsCreated) == 0 && len(c.TeamsRenamed) == 0 && len(c.TeamsAssigned) == 0 &&
		len(c.TeamsUnassigned) == 0 && len(c.MembershipsAdded) == 0 && len(c.MembershipsRemoved) == 0
}
