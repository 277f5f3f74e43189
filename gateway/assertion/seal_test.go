package assertion

import (
	"crypto"
	"errors"
	"strings"
	"testing"
)

const (
	testSecret = "a-session-secret-of-at-least-32-bytes!"
	newSecret  = "the-next-session-secret-also-32-bytes!"
)

func mustSealer(t testing.TB, secrets ...string) *Sealer {
	t.Helper()
	s, err := NewSealer(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTripAndTampering(t *testing.T) {
	s := mustSealer(t, testSecret)
	for _, k := range []*Key{mustKey(t, testEC, ES256), mustKey(t, testRSA, RS256)} {
		sealed, err := s.Seal(k)
		if err != nil {
			t.Fatal(err)
		}
		got, current, err := s.Open(k.ID, k.Algorithm, sealed)
		if err != nil || got.ID != k.ID || !current {
			t.Fatalf("Open(%s) = %v, current %v, %v", k.Algorithm, got, current, err)
		}
		other := mustKey(t, mustEC(testEC.Curve), ES256)
		flipped := append([]byte(nil), sealed...)
		flipped[len(flipped)/2] ^= 1
		tests := []struct {
			name   string
			sealer *Sealer
			kid    string
			blob   []byte
		}{
			{"another secret", mustSealer(t, newSecret), k.ID, sealed},
			{"a flipped bit", s, k.ID, flipped},
			{"moved to another kid", s, other.ID, sealed},
			{"unknown version", s, k.ID, append([]byte{9}, sealed[1:]...)},
			{"truncated", s, k.ID, sealed[:10]},
			{"trailing bytes", s, k.ID, append(append([]byte(nil), sealed...), 0)},
		}
		for _, tt := range tests {
			_, _, err := tt.sealer.Open(tt.kid, k.Algorithm, tt.blob)
			if !errors.Is(err, ErrUnseal) {
				t.Errorf("%s %s: err = %v, want ErrUnseal", k.Algorithm, tt.name, err)
			}
			if err != nil && (strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), newSecret)) {
				t.Errorf("%s: the error quotes a secret", tt.name)
			}
		}
	}
	if _, err := NewSealer(""); err == nil {
		t.Error("NewSealer accepted an empty secret")
	}
	if _, err := NewSealer(); err == nil {
		t.Error("NewSealer accepted no secret")
	}
}

// Rotating session.secret: [old] → [new, old] → [new]. Every step can open
// what the step before stored; "current" says when to store a fresh seal.
func TestSealAcrossSecretRotation(t *testing.T) {
	k := mustKey(t, testEC, ES256)
	oldOnly, both, newOnly := mustSealer(t, testSecret), mustSealer(t, newSecret, testSecret), mustSealer(t, newSecret)
	sealedOld, _ := oldOnly.Seal(k)
	sealedBoth, _ := both.Seal(k)
	sealedNew, _ := newOnly.Seal(k)

	tests := []struct {
		name        string
		sealer      *Sealer
		blob        []byte
		wantCurrent bool
		wantErr     bool
	}{
		{"old list reads its own seal", oldOnly, sealedOld, true, false},
		{"new list reads the old seal", both, sealedOld, false, false},
		{"new list reads its own seal", both, sealedBoth, true, false},
		{"a replica still on the old list reads the new seal", oldOnly, sealedBoth, false, false},
		{"old secret dropped, reads the new list's seal", newOnly, sealedBoth, false, false},
		{"old secret dropped, reads its own seal", newOnly, sealedNew, true, false},
		{"old secret dropped before any reseal", newOnly, sealedOld, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, current, err := tt.sealer.Open(k.ID, ES256, tt.blob)
			if tt.wantErr {
				if !errors.Is(err, ErrUnseal) {
					t.Fatalf("err = %v, want ErrUnseal", err)
				}
				return
			}
			if err != nil || got.ID != k.ID || current != tt.wantCurrent {
				t.Fatalf("Open = %v, current %v, %v; want current %v", got, current, err, tt.wantCurrent)
			}
		})
	}
}

func mustKey(t testing.TB, priv crypto.Signer, alg string) *Key {
	t.Helper()
	k, err := NewKey(priv, alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
