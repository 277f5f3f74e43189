package assertion_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway/assertion"
)

// fileKey writes a fresh EC P-256 private key file.
func fileKey(t *testing.T) string {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, "PRIVATE KEY", der)
}

// From key_file back to stored keys: a key rotated while key_file signs is
// published by the key_file replica, and a replica started without
// key_file signs with it (before its time too, with a warning) instead of
// generating a key nobody published.
func TestStartWithoutKeyFileSignsWithTheRotatedKey(t *testing.T) {
	for _, tc := range []struct {
		name     string
		at       time.Time // when the replica starts without key_file
		wantWarn bool
	}{
		{"after its time", t0.Add(21 * time.Minute), false},
		{"before its time", t0.Add(5 * time.Minute), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memKeys{}
			clock := &movingClock{t: t0}
			file := fileKey(t)
			withFile := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}, KeyFile: file, Now: clock.now})
			rotated := rotate(t, st, t0, t0.Add(20*time.Minute))
			refresh(t, withFile)
			if kids := jwksKids(t, withFile); withFile.Signing().ID == rotated || !slices.Contains(kids, rotated) {
				t.Fatalf("under key_file: signs %s, JWKS %v; want the file key signing and %s published", withFile.Signing().ID, kids, rotated)
			}
			clock.set(tc.at)
			var logs bytes.Buffer
			ks := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}, Now: clock.now,
				PublishKeyFiles: []string{file}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if ks.Signing().ID != rotated || ks.Source() != assertion.SourceDatabase {
				t.Errorf("signs %s from %s, want the rotated key %s from the database", ks.Signing().ID, ks.Source(), rotated)
			}
			if len(st.keys) != 1 || !st.keys[0].Active {
				t.Errorf("stored keys %+v, want only the rotated key, active", st.keys)
			}
			if kids := jwksKids(t, ks); !slices.Contains(kids, withFile.Signing().ID) {
				t.Errorf("JWKS %v lacks the old key file", kids)
			}
			if got := strings.Contains(logs.String(), "before its time"); got != tc.wantWarn {
				t.Errorf("warning %v, want %v:\n%s", got, tc.wantWarn, logs.String())
			}
			if strings.Contains(logs.String(), "generated") {
				t.Errorf("a key was generated:\n%s", logs.String())
			}
		})
	}
}

// A rotated key the replica cannot decrypt, with no active key, stops the
// start rather than making it generate a key nobody published.
func TestStartWithAnUndecryptablePendingKeyFails(t *testing.T) {
	st := &memKeys{}
	rec, err := assertion.NewRotationKey(assertion.ES256, []string{"another-session-secret-of-32-bytes!!"}, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	st.keys = append(st.keys, rec)
	_, err = assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256, Store: st, Secrets: []string{secret},
		Now: clockAt(t0.Add(time.Hour)), Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "cannot be decrypted") {
		t.Errorf("err = %v, want the pending key named as undecryptable", err)
	}
	if len(st.keys) != 1 || st.keys[0].Active {
		t.Errorf("stored keys %+v, want the pending key alone and inactive", st.keys)
	}
}

// A key generated at start signs at once: that is logged when keys were
// published before (stored or publish_key_files), and not on a first start.
func TestGeneratedKeyWarnsWhenKeysWerePublishedBefore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stored   bool
		publish  bool
		wantWarn bool
	}{
		{"first start", false, false, false},
		{"after a key file", false, true, true},
		{"after retiring the active key", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memKeys{}
			if tc.stored { // an RS256 key: published, but it cannot sign ES256
				load(t, assertion.LoadOptions{Algorithm: assertion.RS256, Store: st, Secrets: []string{secret}})
			}
			var publish []string
			if tc.publish {
				publish = []string{fileKey(t)}
			}
			var logs bytes.Buffer
			ks := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}, PublishKeyFiles: publish,
				Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if ks.Source() != assertion.SourceDatabase {
				t.Fatalf("source %s", ks.Source())
			}
			if got := strings.Contains(logs.String(), "signs at once"); got != tc.wantWarn {
				t.Errorf("warning %v, want %v:\n%s", got, tc.wantWarn, logs.String())
			}
		})
	}
}
