package provision_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/teamgate/teamgate/sync/litellm"
	"github.com/teamgate/teamgate/sync/provision"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// The observer is told every delivery attempt's kind and outcome: ok,
// retry (a transient failure, a rejected master key) or parked (a
// permanent refusal).
func TestWorkerObserverSeesEveryOutcome(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(st)
		var mu sync.Mutex
		var seen []string
		w := e.worker("w1")
		w.Observer = func(d provision.Delivery) {
			mu.Lock()
			seen = append(seen, d.Kind+" "+d.Outcome)
			mu.Unlock()
		}
		failures := map[string][]error{ // per team id, popped one per attempt
			"t1": {transient},
			"t2": {&litellm.PermanentError{Status: 422, Message: "bad alias", Path: "/team/new"}},
			"t3": {&litellm.PermanentError{Status: 401, Message: "bad master key", Path: "/team/new"}},
		}
		var fmu sync.Mutex
		e.client.setAnswer(func(_ context.Context, op litellm.Op) error {
			fmu.Lock()
			defer fmu.Unlock()
			if errs := failures[op.TeamID]; len(errs) > 0 {
				failures[op.TeamID] = errs[1:]
				return errs[0]
			}
			return nil
		})
		e.enqueue(t, litellm.TeamNew("t1", "One", litellm.TeamParams{}), litellm.TeamNew("t2", "Two", litellm.TeamParams{}),
			litellm.TeamNew("t3", "Three", litellm.TeamParams{}), litellm.TeamNew("t4", "Four", litellm.TeamParams{}))
		drain(t, w)
		e.clock.advance(provision.DefaultMaxBackoff) // the retries are due
		drain(t, w)

		mu.Lock()
		got := slices.Sorted(slices.Values(seen))
		mu.Unlock()
		want := []string{
			"team_new ok", "team_new ok", "team_new ok", // t1 and t3 on their second attempt, t4 at once
			"team_new parked",                  // t2
			"team_new retry", "team_new retry", // t1 (503), t3 (401)
		}
		if !slices.Equal(got, want) {
			t.Errorf("observed %q, want %q", got, want)
		}
	})
}
