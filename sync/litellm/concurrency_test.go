package litellm

import (
	"fmt"
	"sync"
	"testing"

	"github.com/teamgate/teamgate/sync/litellmfake"
)

func TestApplyConcurrently(t *testing.T) {
	env := newFakeEnv(t, testMasterKey)
	if err := env.client.Apply(t.Context(), TeamNew("g1", "G", TeamParams{})); err != nil {
		t.Fatal(err)
	}
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			user := fmt.Sprintf("oid-%02d", i)
			errs <- env.client.Apply(t.Context(), UserNew(user, user+"@example.com", "", UserParams{}))
			errs <- env.client.Apply(t.Context(), MemberAdd("g1", user))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	tm, _ := env.fake.Team("g1")
	if len(tm.Members) != n+1 {
		t.Errorf("members = %d, want %d", len(tm.Members), n+1)
	}
}

// BenchmarkApply measures one management call against the fake over
// loopback HTTP: the client's own cost plus a local round trip.
func BenchmarkApply(b *testing.B) {
	fake := litellmfake.New(testMasterKey)
	fake.PutTeam(litellmfake.Team{ID: "g1"})
	srv := newBenchServer(b, fake)
	c, err := New(srv, testMasterKey)
	if err != nil {
		b.Fatal(err)
	}
	op := TeamBlock("g1")
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Apply(b.Context(), op); err != nil {
			b.Fatal(err)
		}
	}
}
