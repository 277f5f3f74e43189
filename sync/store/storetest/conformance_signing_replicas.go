package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

var signingReplicaTests = []namedTest{
	{"RecordReplaceListAndForget", testSigningReplicas},
}

// testSigningReplicas: a replica's report replaces its previous one (one
// row per replica), SigningReplicas returns those seen at or after since
// (by kid, then replica id; the bound included), and DeleteSigningReplicas
// removes only those not seen since before.
func testSigningReplicas(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got, err := s.SigningReplicas(ctx, time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("SigningReplicas of an empty store: %v %v", got, err)
	}
	rep := func(id, kid string, seen time.Time) store.SigningReplica {
		return store.SigningReplica{ID: id, KeyID: kid, SeenAt: seen}
	}
	record := func(id, kid string, seen time.Time) {
		t.Helper()
		if err := s.RecordSigningReplica(ctx, rep(id, kid, seen)); err != nil {
			t.Fatalf("RecordSigningReplica(%s): %v", id, err)
		}
	}
	list := func(since time.Time) []store.SigningReplica {
		t.Helper()
		got, err := s.SigningReplicas(ctx, since)
		if err != nil {
			t.Fatalf("SigningReplicas: %v", err)
		}
		return got
	}
	record("r1", "old", at(0))
	record("r2", "old", at(time.Minute))
	record("r3", "new", at(2*time.Minute))
	want := []store.SigningReplica{rep("r3", "new", at(2*time.Minute)), rep("r2", "old", at(time.Minute))}
	if got := list(at(time.Minute)); !reflect.DeepEqual(got, want) {
		t.Errorf("seen since 1m:\n got %+v\nwant %+v", got, want)
	}

	// r1 refreshed and switched to the new key: its row is replaced.
	record("r1", "new", at(3*time.Minute))
	want = []store.SigningReplica{rep("r1", "new", at(3*time.Minute)), rep("r3", "new", at(2*time.Minute)), rep("r2", "old", at(time.Minute))}
	if got := list(time.Time{}); !reflect.DeepEqual(got, want) {
		t.Errorf("after r1's second report:\n got %+v\nwant %+v", got, want)
	}

	n, err := s.DeleteSigningReplicas(ctx, at(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("DeleteSigningReplicas(2m) = %d, %v; want 1 (r2)", n, err)
	}
	if got := list(time.Time{}); !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("after forgetting replicas not seen since 2m:\n got %+v\nwant %+v", got, want[:2])
	}
}
