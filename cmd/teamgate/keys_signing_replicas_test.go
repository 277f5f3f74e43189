package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway/assertion"
	"github.com/teamgate/teamgate/sync/store"
)

// A replica reports the key it signs with at start and after every key
// refresh, also a failed one: after a normal rotation it reports the new
// key and `keys retire` of the old one goes ahead; when it cannot decrypt
// the new active key (sealed for a session.secret it lacks) it keeps
// signing with the old one, and `keys retire` refuses that key (review 2,
// finding 2) although the database says it stopped signing an hour ago,
// until --force.
func TestKeysRetireRefusesAKeyALiveReplicaSignsWith(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		cfg := e.app.cfg
		reported := func() []store.SigningReplica {
			t.Helper()
			rs, err := st.SigningReplicas(t.Context(), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			return rs
		}
		first := reported()
		if len(first) != 1 {
			t.Fatalf("after start: reports %+v, want the replica's one", first)
		}
		k1 := first[0].KeyID
		if k, ok := keyByID(t, st, k1); !ok || !k.Active {
			t.Fatalf("the replica reports %s, which is not the active stored key", k1)
		}
		// rotate activates a key (as another replica or `keys activate`
		// does), the previous one deactivated an hour ago: long enough for
		// the time guard of retire.
		rotate := func(secret string) string {
			t.Helper()
			then := time.Now().Add(-time.Hour)
			rec, err := assertion.NewRotationKey(assertion.ES256, []string{secret}, then.Add(-time.Hour), then)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := (keyAdapter{st}).InsertSigningKey(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
			if err := st.ActivateSigningKey(t.Context(), rec.ID, then); err != nil {
				t.Fatal(err)
			}
			return rec.ID
		}
		retire := func(kid string, force bool) (string, error) {
			t.Helper()
			var out bytes.Buffer
			err := keysRetire(t.Context(), st, cfg, kid, force, &out)
			return out.String(), err
		}

		k2 := rotate(e2eSessKey)
		if err := e.app.gateway.RefreshSigningKeys(t.Context()); err != nil {
			t.Fatal(err)
		}
		if rs := reported(); len(rs) != 1 || rs[0].KeyID != k2 || rs[0].ID != first[0].ID {
			t.Fatalf("after switching to %s: reports %+v", k2, rs)
		}
		if out, err := retire(k1, false); err != nil {
			t.Fatalf("retire of the key no replica signs with any more: %v %s", err, out)
		}

		k3 := rotate("a-session-secret-the-replica-does-not-have-0123456789")
		if err := e.app.gateway.RefreshSigningKeys(t.Context()); err == nil || !strings.Contains(err.Error(), k3) {
			t.Fatalf("refresh with an active key the replica cannot decrypt: %v", err)
		}
		if rs := reported(); len(rs) != 1 || rs[0].KeyID != k2 || !rs[0].SeenAt.After(first[0].SeenAt) {
			t.Fatalf("after the failed refresh: reports %+v, want %s reported again", rs, k2)
		}
		var list bytes.Buffer
		if err := keysList(t.Context(), st, cfg, &list); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(regexp.QuoteMeta(k2)+`\s+ES256\s+inactive\s+1\s`).MatchString(list.String()) ||
			!regexp.MustCompile(regexp.QuoteMeta(k3)+`\s+ES256\s+active\s+0\s`).MatchString(list.String()) {
			t.Errorf("list does not count the replica signing with %s:\n%s", k2, list.String())
		}
		_, err := retire(k2, false)
		if err == nil || !strings.Contains(err.Error(), "1 replica(s) still sign with "+k2) ||
			!strings.Contains(err.Error(), first[0].ID) || !strings.Contains(err.Error(), "check their logs") {
			t.Fatalf("retire of the key a live replica signs with: %v", err)
		}
		if _, ok := keyByID(t, st, k2); !ok {
			t.Fatal("the key was retired")
		}
		if out, err := retire(k2, true); err != nil || !strings.Contains(out, "warning: 1 replica(s) still sign with "+k2) {
			t.Fatalf("retire --force: %v %s", err, out)
		}
		if _, ok := keyByID(t, st, k2); ok {
			t.Error("retire --force kept the key")
		}
	})
}

// Only a report within 3 key_refresh intervals counts: a replica gone
// longer does not hold a key back. `keys list` names a key the replicas
// sign with that is not stored (assertion.key_file).
func TestKeysRetireIgnoresReplicasGoneQuiet(t *testing.T) {
	cfgPath, _ := writeKeysConfig(t)
	cfg, err := loadConfig(cfgPath, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	refresh := cfg.Assertion.KeyRefresh.Std()
	forEachBackend(t, func(t *testing.T, st store.Store) {
		ks, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256, Store: keyAdapter{st}, Secrets: []string{e2eSessKey}})
		if err != nil {
			t.Fatal(err)
		}
		old := ks.Signing().ID
		rec, err := assertion.NewRotationKey(assertion.ES256, []string{e2eSessKey}, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (keyAdapter{st}).InsertSigningKey(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		if err := st.ActivateSigningKey(t.Context(), rec.ID, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		report := func(id, kid string, ago time.Duration) {
			t.Helper()
			if err := st.RecordSigningReplica(t.Context(), store.SigningReplica{ID: id, KeyID: kid, SeenAt: time.Now().Add(-ago)}); err != nil {
				t.Fatal(err)
			}
		}
		report("quiet", old, 3*refresh+time.Minute)
		report("file", "the-key-file-kid", 0)
		var list bytes.Buffer
		if err := keysList(t.Context(), st, cfg, &list); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(regexp.QuoteMeta(old)+`\s+ES256\s+inactive\s+0\s`).MatchString(list.String()) ||
			!strings.Contains(list.String(), "1 replica(s) sign with the-key-file-kid, which is not stored") {
			t.Errorf("list:\n%s", list.String())
		}
		var out bytes.Buffer
		if err := keysRetire(t.Context(), st, cfg, old, false, &out); err != nil || strings.Contains(out.String(), "warning") {
			t.Fatalf("retire with only a replica gone quiet signing the key: %v %s", err, out.String())
		}
	})
}
