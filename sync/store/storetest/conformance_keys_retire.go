package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// testRetireGuard: DeleteSigningKey removes a key only while the guard
// allows it, in the statement itself: never the active key unless
// AllowActive, never one that stopped signing after StoppedBy; it reports
// false for a key it kept and ErrNotFound for an unknown kid.
func testRetireGuard(t *testing.T, s store.Store) {
	insertKey(t, s, signingKey("old", "ES256", at(0), true))
	next := signingKey("next", "ES256", at(time.Minute), false)
	next.ActivateAt = ptr(at(10 * time.Minute))
	insertKey(t, s, next)
	if err := s.ActivateSigningKey(t.Context(), "next", at(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	pending := signingKey("pending", "ES256", at(6*time.Minute), false)
	pending.ActivateAt = ptr(at(30 * time.Minute))
	insertKey(t, s, pending)

	del := func(kid string, g store.RetireGuard) bool {
		t.Helper()
		ok, err := s.DeleteSigningKey(t.Context(), kid, g)
		if err != nil {
			t.Fatalf("DeleteSigningKey(%s, %+v): %v", kid, g, err)
		}
		return ok
	}
	present := func(kid string) bool {
		for _, k := range readKeys(t, s) {
			if k.ID == kid {
				return true
			}
		}
		return false
	}

	// "old" stopped signing at 5m.
	if del("old", store.RetireGuard{StoppedBy: at(4 * time.Minute)}) || !present("old") {
		t.Error("a key that stopped signing after StoppedBy was removed")
	}
	// "next" is active.
	if del("next", store.RetireGuard{}) || !present("next") {
		t.Error("the active key was removed without AllowActive")
	}
	// A rotation not yet signing, and "old" once its cutoff has passed.
	if !del("pending", store.RetireGuard{StoppedBy: at(time.Minute)}) || present("pending") {
		t.Error("a waiting rotation key was not removed")
	}
	if !del("old", store.RetireGuard{StoppedBy: at(5 * time.Minute)}) || present("old") {
		t.Error("a key that stopped signing at StoppedBy was not removed")
	}
	// An active key that does not sign (assertion.key_file), when allowed.
	if !del("next", store.RetireGuard{AllowActive: true}) || present("next") {
		t.Error("AllowActive did not remove the active key")
	}
	_, err := s.DeleteSigningKey(t.Context(), "next", store.RetireGuard{AllowActive: true})
	wantErrIs(t, "delete it again", err, store.ErrNotFound)
}

// testRetireRacesActivation: `teamgate keys retire` reads a rotation key as
// inactive while a replica activates it. Sequentially (the activation
// between the read and the delete) the delete keeps the key; concurrently,
// whatever the order, the store ends with exactly one active key and never
// without one.
func testRetireRacesActivation(t *testing.T, s store.Store) {
	insertKey(t, s, signingKey("k0", "ES256", at(0), true))
	rotation := func(i int) string {
		k := signingKey(fmt.Sprintf("k%d", i), "ES256", at(time.Duration(i)*time.Minute), false)
		k.ActivateAt = ptr(at(time.Duration(i) * time.Minute))
		insertKey(t, s, k)
		return k.ID
	}

	k1 := rotation(1)
	if err := s.ActivateSigningKey(t.Context(), k1, at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ok, err := s.DeleteSigningKey(t.Context(), k1, store.RetireGuard{})
	if err != nil || ok {
		t.Fatalf("retiring a key activated meanwhile: removed %v, %v; want kept", ok, err)
	}

	for i := 2; i < 12; i++ {
		kid := rotation(i)
		var wg sync.WaitGroup
		var actErr, delErr error
		wg.Go(func() { actErr = s.ActivateSigningKey(t.Context(), kid, at(time.Duration(i)*time.Minute)) })
		wg.Go(func() { _, delErr = s.DeleteSigningKey(t.Context(), kid, store.RetireGuard{}) })
		wg.Wait()
		if actErr != nil && !errors.Is(actErr, store.ErrNotFound) {
			t.Fatalf("round %d: activate: %v", i, actErr)
		}
		if delErr != nil {
			t.Fatalf("round %d: delete: %v", i, delErr)
		}
		var active []string
		for _, k := range readKeys(t, s) {
			if k.Active {
				active = append(active, k.ID)
			}
		}
		if len(active) != 1 {
			t.Fatalf("round %d: active keys %v, want exactly one", i, active)
		}
	}
}
