package assertion_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway/assertion"
)

const otherSecret = "another-session-secret-of-32-bytes-or-more"

// A rotation key sealed for another session.secret (`teamgate keys rotate`
// run with the wrong config) is never activated: a replica that cannot
// decrypt it logs an error naming the kid and the likely cause, keeps
// signing with the current key, and the store keeps that key active, so a
// replica starting later still loads. Without the check the first replica
// to refresh would switch the database to a key no replica can open.
func TestDueKeyThatCannotBeDecryptedIsNotActivated(t *testing.T) {
	st := &memKeys{}
	clock := &movingClock{t: t0}
	var logs bytes.Buffer
	opts := assertion.LoadOptions{Store: st, Secrets: []string{secret}, Now: clock.now,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	ks := load(t, opts)
	old := ks.Signing().ID

	rec, err := assertion.NewRotationKey(assertion.ES256, []string{otherSecret}, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.InsertSigningKey(t.Context(), rec); !ok || err != nil {
		t.Fatal(ok, err)
	}
	clock.set(t0.Add(2 * time.Minute))
	if _, err := ks.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh failed instead of keeping the current key: %v", err)
	}
	if ks.Signing().ID != old {
		t.Errorf("signs with %s, want the current key %s", ks.Signing().ID, old)
	}
	if !slices.Contains(jwksKids(t, ks), rec.ID) {
		t.Error("the undecryptable key is no longer published")
	}
	for _, k := range st.keys {
		if (k.ID == old) != k.Active || (k.ID == rec.ID && k.ActivateAt == nil) {
			t.Errorf("store after the refresh: %s active %v activate_at %v; want the old key still active", k.ID, k.Active, k.ActivateAt)
		}
	}
	line := logs.String()
	for _, want := range []string{"level=ERROR", "kid=" + rec.ID, "session.secret"} {
		if !strings.Contains(line, want) {
			t.Errorf("log lacks %q:\n%s", want, line)
		}
	}

	// A replica starting now loads and signs with the old key as well.
	logs.Reset()
	if c := load(t, opts); c.Signing().ID != old || !strings.Contains(logs.String(), "kid="+rec.ID) {
		t.Errorf("a new replica signs with %s (want %s); log: %s", c.Signing().ID, old, logs.String())
	}
}

// A due key sealed for the previous secret only (session.secret rotated
// as a list since) is activated, and sealed again for the current secret
// first, so that it stays readable once the old secret is dropped.
func TestDueKeySealedForTheOldSecretIsResealedThenActivated(t *testing.T) {
	st := &memKeys{}
	clock := &movingClock{t: t0}
	opts := assertion.LoadOptions{Store: st, Secrets: []string{secret, otherSecret}, Now: clock.now}
	ks := load(t, opts)
	rec, err := assertion.NewRotationKey(assertion.ES256, []string{otherSecret}, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.InsertSigningKey(t.Context(), rec); !ok || err != nil {
		t.Fatal(ok, err)
	}
	clock.set(t0.Add(2 * time.Minute))
	refresh(t, ks)
	if ks.Signing().ID != rec.ID || st.reseals != 1 {
		t.Fatalf("signs with %s after %d reseals; want %s, resealed once", ks.Signing().ID, st.reseals, rec.ID)
	}
	// The old secret dropped: the key still opens.
	if c := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}, Now: clock.now}); c.Signing().ID != rec.ID {
		t.Errorf("with the current secret only, a replica signs with %s", c.Signing().ID)
	}
}
