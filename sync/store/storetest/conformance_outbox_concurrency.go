package storetest

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// Eight claimers drain an outbox of 10 teams × 12 users: every operation is
// claimed exactly once, and an operation is claimed only after every earlier
// conflicting operation was settled.
func testOutboxConcurrentClaimers(t *testing.T, s store.Store) {
	const teams, users, claimers = 10, 12, 8
	var in []store.OutboxOp
	for u := range users {
		in = append(in, op("user_new", "", fmt.Sprintf("u%02d", u)))
	}
	for tm := range teams {
		in = append(in, op("team_new", fmt.Sprintf("t%02d", tm), ""))
	}
	for u := range users {
		for tm := range teams {
			in = append(in, op("member_add", fmt.Sprintf("t%02d", tm), fmt.Sprintf("u%02d", u)))
		}
	}
	for tm := range teams {
		in = append(in, op("team_update", fmt.Sprintf("t%02d", tm), ""))
	}
	ids := enqueue(t, s, at(0), in...)
	byID := map[int64]store.OutboxOp{}
	for i, id := range ids {
		o := in[i]
		o.ID = id
		byID[id] = o
	}

	// seq orders events: "about to complete" is taken before the database
	// settles an operation, "claimed" after a claim returns, so a claim
	// that saw a settled operation always carries the larger number.
	var seq, done atomic.Int64
	var mu sync.Mutex
	claimedAt := map[int64]int64{}
	claims := map[int64]int{}
	settledAt := map[int64]int64{}
	var wg sync.WaitGroup
	errs := make(chan error, claimers)
	for w := range claimers {
		owner := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for done.Load() < int64(len(in)) {
				got, err := s.ClaimOutbox(t.Context(), owner, 5, at(time.Second), time.Hour)
				if err != nil {
					errs <- err
					return
				}
				n := seq.Add(1)
				mu.Lock()
				for _, o := range got {
					claims[o.ID]++
					claimedAt[o.ID] = n
				}
				mu.Unlock()
				if len(got) == 0 {
					runtime.Gosched() // the rest is leased by others or blocked behind them
					continue
				}
				for _, o := range got {
					mu.Lock()
					settledAt[o.ID] = seq.Add(1)
					mu.Unlock()
					if err := s.CompleteOutbox(t.Context(), owner, []int64{o.ID}, at(time.Second)); err != nil {
						errs <- err
						return
					}
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range ids {
		if claims[id] != 1 {
			t.Errorf("operation %d claimed %d times", id, claims[id])
		}
	}
	for _, b := range ids {
		for _, a := range ids {
			if a >= b || !conflict(byID[a], byID[b]) {
				continue
			}
			if claimedAt[b] < settledAt[a] {
				t.Errorf("%v (id %d) claimed before the earlier %v (id %d) was settled", byID[b], b, byID[a], a)
			}
		}
	}
}

// conflict is the ordering rule of store/outbox.go.
func conflict(a, b store.OutboxOp) bool {
	team := a.TeamID != "" && a.TeamID == b.TeamID && (a.UserID == "" || b.UserID == "" || a.UserID == b.UserID)
	user := a.UserID != "" && a.UserID == b.UserID && (a.TeamID == "" || b.TeamID == "" || a.TeamID == b.TeamID)
	return team || user
}
