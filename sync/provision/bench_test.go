package provision_test

import (
	"fmt"
	"testing"

	"github.com/teamgate/teamgate/sync/litellm"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// BenchmarkDrain measures the outbox's own cost per delivered operation
// (claim, settle; the client does nothing): 100 users signing in for the
// first time, each with 10 teams, i.e. 1,110 operations per iteration.
func BenchmarkDrain(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend, func(b *testing.B) {
			st := storetest.New(b, backend)
			var ops []store.OutboxOp
			add := func(op litellm.Op) {
				ops = append(ops, store.OutboxOp{Kind: op.Kind, TeamID: op.TeamID, UserID: op.UserID, Body: op.Body})
			}
			for tm := range 10 {
				add(litellm.TeamNew(fmt.Sprintf("t%d", tm), "T", litellm.TeamParams{}))
			}
			for u := range 100 {
				user := fmt.Sprintf("u%03d", u)
				add(litellm.UserNew(user, user+"@example.com", user, litellm.UserParams{}))
				for tm := range 10 {
					add(litellm.MemberAdd(fmt.Sprintf("t%d", tm), user))
				}
			}
			e := newEnv(st)
			w := e.worker("bench")
			b.ResetTimer()
			for range b.N {
				if err := st.InTx(b.Context(), func(tx store.Tx) error {
					_, err := tx.EnqueueOutbox(b.Context(), ops, e.clock.now())
					return err
				}); err != nil {
					b.Fatal(err)
				}
				n, err := w.Drain(b.Context())
				if err != nil || n != len(ops) {
					b.Fatalf("drained %d of %d: %v", n, len(ops), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(ops)), "µs/op-delivered")
		})
	}
}
