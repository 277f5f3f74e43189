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

// The background job closes the gap between sign-ins: every interval it
// follows Graph's group delta query from where the last run stopped and
// applies what changed to teams and memberships, with nobody signing in.
//
// A run has two steps. First the teams: the app's assignments (read fresh)
// and the groups the delta reports renamed or deleted go through Diff and
// apply in one transaction, as at a sign-in but with no user. Then the
// users: every known user the delta touches is brought up to date in their
// own transaction with the same Diff. After an incremental delta (the
// usual case: few changes) each such user is re-checked with Graph exactly
// as a session re-validation would, which also catches disabled and deleted
// accounts. After a full delta (the first run, or after Graph answered 410)
// with direct memberships, the delta's member lists are complete and are
// used as they are, so a full run costs no per-user Graph calls; with
// nested groups every touched user is re-checked.
//
// The stored deltaLink moves forward only when every user was brought up
// to date, so a run that failed part-way is repeated, not lost.

// DeltaDirectory is what the background job reads. *graph.Client
// satisfies it.
type DeltaDirectory interface {
	CheckDirectory
	GroupsDelta(ctx context.Context, deltaLink string) (graph.Delta, error)
	// GroupMembers lists a group's members (transitive ones with nested
	// groups), for a group newly assigned to the app.
	GroupMembers(ctx context.Context, groupID string) ([]graph.Member, error)
}

// BackgroundConfig configures the background job.
type BackgroundConfig struct {
	// Interval between runs (sync.interval); zero or less turns it off.
	Interval time.Duration
	// Nested is entra.nested_groups: memberships are transitive, so the
	// delta's (direct) member lists are not the memberships.
	Nested bool
	// Workers bounds concurrent per-user re-checks (default 4).
	Workers int
	// CreateUsers (sync.create_users) creates the users the delta adds to a
	// team's group before their first sign-in, with
	// default_internal_user_params (and in LiteLLM, with provisioning),
	// instead of leaving them until they sign in. Disabled accounts are not
	// created.
	CreateUsers bool
	// OnRun, if set, is told about every run this process made (not the
	// skipped ones), e.g. for metrics.
	OnRun func(RunResult, error)
}

// Sync state names in the database.
const (
	stateDeltaLink = "graph.groups_delta"
	stateLastRun   = "background.last_run"
	leaderName     = "teamsync.background"
)

// Background runs the background reconciliation.
type Background struct {
	r   *Reconciler
	dir DeltaDirectory
	cfg BackgroundConfig
	log *slog.Logger
}

// NewBackground returns the job for r, whose directory must implement
// DeltaDirectory.
func NewBackground(r *Reconciler, cfg BackgroundConfig) (*Background, error) {
	dir, ok := r.dir.(DeltaDirectory)
	if !ok {
		return nil, errors.New("teamsync: the directory cannot follow group deltas (it does not implement DeltaDirectory)")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	return &Background{r: r, dir: dir, cfg: cfg, log: r.log.With("job", "background")}, nil
}

// RunResult describes one run.
type RunResult struct {
	// Skipped is set when another replica holds the leadership or ran
	// less than half an interval ago; nothing else is then set.
	Skipped bool
	// Full is set when the run read every group (first run or resync);
	// Resynced when that was because Graph expired the stored deltaLink.
	Full, Resynced bool
	GroupsChanged  int
	UsersCreated   int // with CreateUsers
	UsersChecked   int
	UsersFailed    int
	// Teams are the team-level changes; MembershipsAdded/Removed count
	// the users' membership changes.
	Teams              Changes
	MembershipsAdded   int
	MembershipsRemoved int
	SessionsEnded      int64
	Duration           time.Duration
}

// Run runs the job at every interval until ctx ends; the first run starts
// at once. Errors are logged and recorded as sync events; the next run
// tries again.
func (b *Background) Run(ctx context.Context) {
	if b.cfg.Interval <= 0 {
		return
	}
	t := time.NewTicker(b.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := b.RunOnce(ctx, false); err != nil && ctx.Err() == nil {
			b.log.LogAttrs(ctx, slog.LevelError, "background sync failed", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce runs the job once if this process is the leader. Unless force is
// set it also skips the run when any replica started one less than half
// an interval ago, so that replicas whose tickers are out of step do not
// run it twice per interval.
func (b *Background) RunOnce(ctx context.Context, force bool) (RunResult, error) {
	release, ok, err := b.r.st.TryLeader(ctx, leaderName)
	if err != nil {
		return RunResult{}, fmt.Errorf("background sync: leadership: %w", err)
	}
	if !ok {
		return RunResult{Skipped: true}, nil
	}
	defer release()
	start := b.r.now()
	if !force && b.ranRecently(ctx, start) {
		return RunResult{Skipped: true}, nil
	}
	if err := b.r.st.SetSyncState(ctx, stateLastRun, start.UTC().Format(time.RFC3339Nano), start); err != nil {
		return RunResult{}, fmt.Errorf("background sync: record the run: %w", err)
	}
	res, err := b.run(ctx, start)
	res.Duration = b.r.now().Sub(start)
	b.record(ctx, start, res, err)
	if b.cfg.OnRun != nil {
		b.cfg.OnRun(res, err)
	}
	return res, err
}

func (b *Background) ranRecently(ctx context.Context, now time.Time) bool {
	v, _, err := b.r.st.SyncState(ctx, stateLastRun)
	if err != nil {
		return false
	}
	last, err := time.Parse(time.RFC3339Nano, v)
	return err == nil && now.Sub(last) < b.cfg.Interval/2
}

func (b *Background) run(ctx context.Context, start time.Time) (RunResult, error) {
	var res RunResult
	link, _, err := b.r.st.SyncState(ctx, stateDeltaLink)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return res, fmt.Errorf("read delta link: %w", err)
	}
	var app graph.AppAssignments
	appScoped := b.dir.HasServicePrincipal()
	if appScoped {
		if app, err = b.dir.AppAssignments(ctx, true); err != nil {
			return res, &Error{Stage: StageGraph, Err: err}
		}
	}
	delta, err := b.dir.GroupsDelta(ctx, link)
	if errors.Is(err, graph.ErrDeltaExpired) && link != "" {
		b.log.LogAttrs(ctx, slog.LevelWarn, "graph expired the stored delta link; starting a full resync")
		res.Resynced = true
		delta, err = b.dir.GroupsDelta(ctx, "")
	}
	if err != nil {
		return res, &Error{Stage: StageGraph, Err: err}
	}
	res.Full = delta.Full
	res.GroupsChanged = len(delta.Changes)

	obs := Observed{AppScoped: appScoped, AppGroups: app.Groups, AppFetchedAt: app.FetchedAt}
	for _, c := range delta.Changes {
		switch {
		case c.Deleted:
			obs.Deleted = append(obs.Deleted, c.ID)
		case c.DisplayName != nil && strings.TrimSpace(*c.DisplayName) != "":
			obs.Known = append(obs.Known, graph.Group{ID: c.ID, DisplayName: *c.DisplayName})
		}
	}
	if err := checkNames(obs); err != nil {
		return res, &Error{Stage: StageGraph, Err: err}
	}
	teams, wasAssigned, err := b.applyTeams(ctx, obs)
	if err != nil {
		return res, err
	}
	res.Teams = teams

	users, full, err := b.affected(ctx, delta, obs, teams, wasAssigned, &res)
	if err != nil {
		return res, err
	}
	b.updateUsers(ctx, users, full, obs, &res)
	if res.UsersFailed > 0 {
		return res, fmt.Errorf("%d of %d users could not be brought up to date; the delta will be read again next run", res.UsersFailed, res.UsersChecked)
	}
	if err := b.r.st.SetSyncState(ctx, stateDeltaLink, delta.DeltaLink, b.r.now()); err != nil {
		return res, fmt.Errorf("store delta link: %w", err)
	}
	return res, nil
}

// applyTeams applies the team-level part of the run in one transaction. It
// also returns which of the teams it looked at were assigned before it
// wrote, so that the members of newly assigned ones can be read.
func (b *Background) applyTeams(ctx context.Context, obs Observed) (Changes, map[string]bool, error) {
	var c Changes
	var wasAssigned map[string]bool
	err := b.r.st.InTx(ctx, func(tx store.Tx) error {
		c, wasAssigned = Changes{}, map[string]bool{}
		cur, err := readCurrent(ctx, tx, obs, "")
		if err != nil {
			return err
		}
		for id, t := range cur.Teams {
			wasAssigned[id] = t.Assigned
		}
		plan := Diff(obs, cur, b.r.cfg.DefaultTeamParams.storeParams())
		if c, err = apply(ctx, tx, plan, "", b.r.now()); err != nil {
			return err
		}
		_, err = b.r.enqueue(ctx, tx, Result{Changes: c}, plan)
		return err
	})
	if err != nil {
		return Changes{}, nil, &Error{Stage: StageDatabase, Err: err}
	}
	return c, wasAssigned, nil
}

// affected lists the known users the run must bring up to date. With full
// set (a full delta of direct memberships) it also says which groups each
// of them is in; otherwise each is re-checked with Graph.
func (b *Background) affected(ctx context.Context, delta graph.Delta, obs Observed, teams Changes, wasAssigned map[string]bool, res *RunResult) ([]string, map[string][]graph.Group, error) {
	appGroups := make(map[string]bool, len(obs.AppGroups))
	for _, g := range obs.AppGroups {
		appGroups[g.ID] = true
	}
	managed := func(id string) bool {
		return !obs.AppScoped || appGroups[id] // without an app every group of a user is a team
	}
	candidates := map[string]bool{}
	added := map[string]bool{} // users the delta adds to a team's group (CreateUsers)
	var teamsToScan []string   // teams whose current members are affected
	// A full delta of direct memberships says who is in each group; it
	// is used as it is unless a group came without its name.
	useDelta := delta.Full && !b.cfg.Nested && !slices.ContainsFunc(delta.Changes, func(c graph.GroupChange) bool {
		return !c.Deleted && (c.DisplayName == nil || strings.TrimSpace(*c.DisplayName) == "")
	})
	var full map[string][]graph.Group
	if useDelta {
		full = map[string][]graph.Group{}
	}
	for _, c := range delta.Changes {
		if c.Deleted {
			teamsToScan = append(teamsToScan, c.ID)
			continue
		}
		// With nested groups a change in any group, assigned or not, may
		// change a user's transitive memberships.
		isManaged := managed(c.ID)
		if !b.cfg.Nested && !isManaged {
			continue
		}
		name := ""
		if c.DisplayName != nil {
			name = *c.DisplayName
		}
		for _, m := range c.MembersAdded {
			if m.Type == "user" {
				candidates[m.ID] = true
				if isManaged {
					added[m.ID] = true
				}
				if useDelta {
					full[m.ID] = append(full[m.ID], graph.Group{ID: c.ID, DisplayName: name})
				}
			} else if b.cfg.Nested {
				teamsToScan = append(teamsToScan, c.ID) // a subgroup changed: its team's members are re-checked
			}
		}
		for _, m := range c.MembersRemoved {
			if m.Type == "user" {
				candidates[m.ID] = true
			} else if b.cfg.Nested {
				teamsToScan = append(teamsToScan, c.ID) // a subgroup changed: its team's members are re-checked
			}
		}
	}
	teamsToScan = append(teamsToScan, teams.TeamsUnassigned...)
	// After a full delta every current member is looked at: whoever the
	// delta no longer lists has left.
	scanAll := delta.Full
	// Groups newly assigned to the app: the delta need not mention them
	// (their members did not change), so ask Graph who is in them.
	if obs.AppScoped && !useDelta {
		for _, g := range obs.AppGroups {
			if wasAssigned[g.ID] {
				continue
			}
			members, err := b.dir.GroupMembers(ctx, g.ID)
			if err != nil {
				return nil, nil, &Error{Stage: StageGraph, Err: err}
			}
			for _, m := range members {
				if m.Type == "user" {
					candidates[m.ID] = true
				}
			}
		}
	}
	if scanAll || len(teamsToScan) > 0 {
		var scan []string // nil: every team
		if !scanAll {
			scan = teamsToScan
		}
		ms, err := b.r.st.MembersOfTeams(ctx, scan)
		if err != nil {
			return nil, nil, &Error{Stage: StageDatabase, Err: fmt.Errorf("read members: %w", err)}
		}
		for _, m := range ms {
			if m.Source == store.SourceEntra {
				candidates[m.UserID] = true
			}
		}
	}
	ids := make([]string, 0, len(candidates))
	for id := range candidates {
		ids = append(ids, id)
	}
	known, err := b.r.st.KnownUserIDs(ctx, ids)
	if err != nil {
		return nil, nil, &Error{Stage: StageDatabase, Err: fmt.Errorf("read users: %w", err)}
	}
	if b.cfg.CreateUsers {
		for _, id := range ids {
			if _, ok := slices.BinarySearch(known, id); ok || !added[id] {
				continue
			}
			created, err := b.createUser(ctx, id)
			if err != nil {
				return nil, nil, err
			}
			if created {
				res.UsersCreated++
				known = append(known, id)
			}
		}
		slices.Sort(known)
	}
	return known, full, nil
}

// createUser creates a user the delta added to a team's group before their
// first sign-in (CreateUsers), unless their account is gone or disabled.
func (b *Background) createUser(ctx context.Context, userID string) (bool, error) {
	start := b.r.now()
	profile, err := b.dir.User(ctx, userID)
	if errors.Is(err, graph.ErrUserNotFound) {
		return false, nil
	}
	if err != nil {
		return false, &Error{Stage: StageGraph, Err: err}
	}
	if profile.AccountEnabled != nil && !*profile.AccountEnabled {
		return false, nil
	}
	ident := store.UserIdentity{ID: userID, Email: userEmail(profile, Identity{}),
		UPN: profile.UserPrincipalName, DisplayName: profile.DisplayName}
	params := b.r.cfg.DefaultInternalUserParams.storeParams()
	var created bool
	err = b.r.st.InTx(ctx, func(tx store.Tx) error {
		now := b.r.now()
		var err error
		if created, err = tx.CreateUser(ctx, ident, params, now); err != nil || !created {
			return err
		}
		u := store.User{ID: userID, Email: ident.Email, UPN: ident.UPN, DisplayName: ident.DisplayName,
			UserRole: params.UserRole, MaxBudget: params.MaxBudget, BudgetDuration: params.BudgetDuration, Models: params.Models}
		if _, err := b.r.enqueue(ctx, tx, Result{User: u, UserCreated: true}, Plan{}); err != nil {
			return err
		}
		e := event(userID, start, b.r.now().Sub(start), Changes{}, nil)
		e.Kind, e.Detail = store.EventBackground, "user created before their first sign-in"
		return tx.InsertSyncEvent(ctx, e)
	})
	if err != nil {
		return false, &Error{Stage: StageDatabase, Err: fmt.Errorf("create user: %w", err)}
	}
	return created, nil
}

// updateUsers brings each user up to date, a few at a time.
func (b *Background) updateUsers(ctx context.Context, users []string, full map[string][]graph.Group, obs Observed, res *RunResult) {
	var mu sync.Mutex
	sem := make(chan struct{}, b.cfg.Workers)
	var wg sync.WaitGroup
	for _, id := range users {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var c Changes
			var ended int64
			var err error
			if full != nil {
				userObs := obs
				userObs.UserGroups = full[id]
				var r Result
				r, err = b.r.applyKnown(ctx, id, store.EventBackground, b.r.now(), userObs, nil, "")
				c = r.Changes
			} else {
				var r RecheckResult
				r, err = b.r.Recheck(ctx, id, store.EventBackground)
				c, ended = r.Changes, r.SessionsEnded
			}
			mu.Lock()
			defer mu.Unlock()
			res.UsersChecked++
			if errors.Is(err, ErrUnknownUser) {
				return // deleted from teamgate meanwhile
			}
			if err != nil {
				res.UsersFailed++
				return
			}
			res.MembershipsAdded += len(c.MembershipsAdded)
			res.MembershipsRemoved += len(c.MembershipsRemoved)
			res.SessionsEnded += ended
		}()
	}
	wg.Wait()
}

// record writes the run's sync event and log line.
func (b *Background) record(ctx context.Context, start time.Time, res RunResult, cause error) {
	if res.Skipped {
		return
	}
	mode := "incremental"
	switch {
	case res.Resynced:
		mode = "full resync (delta link expired)"
	case res.Full:
		mode = "full"
	}
	detail := fmt.Sprintf("%s; %d groups changed; %d users checked, %d failed; memberships +%d -%d; %d sessions ended",
		mode, res.GroupsChanged, res.UsersChecked, res.UsersFailed, res.MembershipsAdded, res.MembershipsRemoved, res.SessionsEnded)
	if res.UsersCreated > 0 {
		detail += fmt.Sprintf("; %d users created before their first sign-in", res.UsersCreated)
	}
	e := event("", start, res.Duration, res.Teams, cause)
	e.Kind, e.Detail = store.EventBackground, detail
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := b.r.st.RecordSyncEvent(ctx, e); err != nil {
		b.log.LogAttrs(ctx, slog.LevelWarn, "could not record background sync event", slog.String("error", err.Error()))
	}
	level := slog.LevelInfo
	if cause != nil {
		level = slog.LevelError
	}
	b.log.LogAttrs(ctx, level, "background sync run",
		slog.String("mode", mode),
		slog.Int("groups_changed", res.GroupsChanged),
		slog.Int("users_created", res.UsersCreated),
		slog.Int("users_checked", res.UsersChecked),
		slog.Int("users_failed", res.UsersFailed),
		slog.Int("teams_created", len(res.Teams.TeamsCreated)),
		slog.Int("teams_renamed", len(res.Teams.TeamsRenamed)),
		slog.Int("teams_unassigned", len(res.Teams.TeamsUnassigned)),
		slog.Int("memberships_added", res.MembershipsAdded),
		slog.Int("memberships_removed", res.MembershipsRemoved),
		slog.Int64("sessions_ended", res.SessionsEnded),
		slog.Duration("duration", res.Duration))
}
