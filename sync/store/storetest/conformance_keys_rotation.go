package storetest

import (
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// testSigningKeyRotation: a key inserted inactive with ActivateAt is read
// back as such; ActivateSigningKey swaps the active key (stamping the old
// one's DeactivatedAt), voids an overtaken due rotation, leaves the other
// algorithm alone and is idempotent; DeleteSigningKey unpublishes a key.
func testSigningKeyRotation(t *testing.T, s store.Store) {
	insertKey(t, s, signingKey("old", "ES256", at(0), true))
	insertKey(t, s, signingKey("rsa", "RS256", at(0), true))
	next := signingKey("next", "ES256", at(time.Minute), false)
	next.ActivateAt = ptr(at(10 * time.Minute))
	if !insertKey(t, s, next) {
		t.Fatal("an inactive key with an active one of its algorithm was not inserted")
	}
	due := signingKey("due", "ES256", at(2*time.Minute), false)
	due.ActivateAt = ptr(at(3 * time.Minute))
	insertKey(t, s, due)
	byID := func() map[string]store.SigningKey {
		m := map[string]store.SigningKey{}
		for _, k := range readKeys(t, s) {
			m[k.ID] = k
		}
		return m
	}
	if k := byID()["next"]; k.Active || k.ActivateAt == nil || !k.ActivateAt.Equal(at(10*time.Minute)) || k.DeactivatedAt != nil {
		t.Errorf("next read back as active %v, activate_at %v, deactivated_at %v", k.Active, k.ActivateAt, k.DeactivatedAt)
	}

	// At 5m "next" is activated early (as `teamgate keys activate` does):
	// "old" is stamped, the due "due" is voided (inactive, no activate_at).
	for range 2 { // idempotent
		if err := s.ActivateSigningKey(t.Context(), "next", at(5*time.Minute)); err != nil {
			t.Fatalf("ActivateSigningKey: %v", err)
		}
	}
	m := byID()
	if k := m["next"]; !k.Active || k.ActivateAt != nil || k.DeactivatedAt != nil {
		t.Errorf("next: active %v, activate_at %v, deactivated_at %v", k.Active, k.ActivateAt, k.DeactivatedAt)
	}
	if k := m["old"]; k.Active || k.DeactivatedAt == nil || !k.DeactivatedAt.Equal(at(5*time.Minute)) {
		t.Errorf("old: active %v, deactivated_at %v; want inactive since 5m", k.Active, k.DeactivatedAt)
	}
	if k := m["due"]; k.Active || k.ActivateAt != nil || k.DeactivatedAt != nil {
		t.Errorf("due: active %v, activate_at %v, deactivated_at %v; want a voided rotation", k.Active, k.ActivateAt, k.DeactivatedAt)
	}
	if k := m["rsa"]; !k.Active {
		t.Error("the RS256 key was deactivated by an ES256 activation")
	}

	wantErrIs(t, "activate an unknown key", s.ActivateSigningKey(t.Context(), "nope", at(0)), store.ErrNotFound)
	if ok, err := s.DeleteSigningKey(t.Context(), "old", store.RetireGuard{}); err != nil || !ok {
		t.Fatalf("DeleteSigningKey: %v, %v", ok, err)
	}
	_, err := s.DeleteSigningKey(t.Context(), "old", store.RetireGuard{})
	wantErrIs(t, "delete it again", err, store.ErrNotFound)
	if got := kids(readKeys(t, s)); len(got) != 3 {
		t.Errorf("keys after deleting old = %v", got)
	}
}
