package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

var keyTests = []namedTest{
	{"EmptyStoreHasNoKeys", testNoSigningKeys},
	{"InsertAndReadBack", testInsertSigningKey},
	{"DuplicateKidInsertsNothing", testDuplicateKid},
	{"OneActiveKeyPerAlgorithm", testOneActiveKeyPerAlg},
	{"NewestFirst", testSigningKeysOrder},
	{"ConcurrentFirstStartsConverge", testConcurrentSigningKeys},
	{"ResealReplacesOnlyThePrivateKey", testResealSigningKey},
	{"RotationActivateAndDelete", testSigningKeyRotation},
	{"RetireOnlyWhatTheGuardAllows", testRetireGuard},
	{"RetireRacingActivationKeepsOneActiveKey", testRetireRacesActivation},
}

func signingKey(kid, alg string, created time.Time, active bool) store.SigningKey {
	return store.SigningKey{
		ID: kid, Algorithm: alg,
		// Arbitrary bytes, zero and high bytes included: the column must
		// keep binary data exactly.
		PrivateKey: []byte{0x01, 0x00, 0xff, 0x7f, byte(len(kid))},
		PublicJWK:  fmt.Sprintf(`{"kty":"EC","kid":%q}`, kid),
		CreatedAt:  created, Active: active,
	}
}

func insertKey(t *testing.T, s store.Store, k store.SigningKey) bool {
	t.Helper()
	ok, err := s.InsertSigningKey(t.Context(), k)
	if err != nil {
		t.Fatalf("InsertSigningKey(%s): %v", k.ID, err)
	}
	return ok
}

func readKeys(t *testing.T, s store.Store) []store.SigningKey {
	t.Helper()
	keys, err := s.SigningKeys(t.Context())
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	return keys
}

func kids(keys []store.SigningKey) []string {
	out := []string{}
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

func testNoSigningKeys(t *testing.T, s store.Store) {
	if keys := readKeys(t, s); keys == nil || len(keys) != 0 {
		t.Fatalf("keys = %#v, want an empty, non-nil list", keys)
	}
}

func testInsertSigningKey(t *testing.T, s store.Store) {
	k := signingKey("kid-1", "ES256", t0, true)
	if !insertKey(t, s, k) {
		t.Fatal("first insert reported nothing inserted")
	}
	k.CreatedAt = at(0)
	if got := readKeys(t, s); len(got) != 1 || !reflect.DeepEqual(got[0], k) {
		t.Fatalf("read back %#v, want %#v", got, k)
	}
}

func testDuplicateKid(t *testing.T, s store.Store) {
	insertKey(t, s, signingKey("kid-1", "ES256", t0, true))
	dup := signingKey("kid-1", "ES256", t0.Add(time.Hour), false)
	dup.PrivateKey = []byte("other")
	if insertKey(t, s, dup) {
		t.Fatal("a duplicate kid was inserted")
	}
	if got := readKeys(t, s); len(got) != 1 || !bytes.Equal(got[0].PrivateKey, signingKey("kid-1", "", t0, true).PrivateKey) || !got[0].Active {
		t.Fatalf("the original key changed: %#v", got)
	}
}

func testOneActiveKeyPerAlg(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		key  store.SigningKey
		want bool
	}{
		{"first active ES256", signingKey("es-1", "ES256", at(0), true), true},
		{"second active ES256", signingKey("es-2", "ES256", at(time.Second), true), false},
		{"inactive ES256", signingKey("es-3", "ES256", at(2*time.Second), false), true},
		{"active RS256 beside active ES256", signingKey("rs-1", "RS256", at(3*time.Second), true), true},
	}
	for _, tt := range tests {
		if got := insertKey(t, s, tt.key); got != tt.want {
			t.Errorf("%s: inserted = %v, want %v", tt.name, got, tt.want)
		}
	}
	var active []string
	for _, k := range readKeys(t, s) {
		if k.Active {
			active = append(active, k.ID)
		}
	}
	if !reflect.DeepEqual(active, []string{"rs-1", "es-1"}) {
		t.Errorf("active keys = %v, want [rs-1 es-1]", active)
	}
}

func testSigningKeysOrder(t *testing.T, s store.Store) {
	insertKey(t, s, signingKey("b-old", "ES256", at(0), false))
	insertKey(t, s, signingKey("c-new", "ES256", at(2*time.Hour), true))
	insertKey(t, s, signingKey("a-mid", "RS256", at(time.Hour), true))
	insertKey(t, s, signingKey("a-old", "RS256", at(0), false))
	if got, want := kids(readKeys(t, s)), []string{"c-new", "a-mid", "a-old", "b-old"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order = %v, want %v (newest first, then kid)", got, want)
	}
}

// Replicas starting together each try to insert their own active key:
// exactly one insert wins and everybody then reads the same active key.
func testConcurrentSigningKeys(t *testing.T, s store.Store) {
	const replicas = 12
	inserted, errs := collect(replicas, func(i int) (bool, error) {
		return s.InsertSigningKey(t.Context(), signingKey(fmt.Sprintf("kid-%02d", i), "ES256", at(time.Duration(i)), true))
	})
	noErrors(t, "insert", errs)
	wins := 0
	for _, ok := range inserted {
		if ok {
			wins++
		}
	}
	keys := readKeys(t, s)
	if wins != 1 || len(keys) != 1 || !keys[0].Active {
		t.Fatalf("%d inserts won, keys %v; want exactly one active key", wins, kids(keys))
	}
}

func testResealSigningKey(t *testing.T, s store.Store) {
	k := signingKey("kid-1", "ES256", t0, true)
	insertKey(t, s, k)
	insertKey(t, s, signingKey("kid-2", "ES256", t0, false))
	resealed := []byte{0xff, 0x00, 0x02}
	if err := s.ResealSigningKey(t.Context(), "kid-1", resealed); err != nil {
		t.Fatal(err)
	}
	want := k
	want.PrivateKey, want.CreatedAt = resealed, at(0)
	keys := readKeys(t, s)
	for _, got := range keys {
		if got.ID == "kid-1" && !reflect.DeepEqual(got, want) {
			t.Errorf("after reseal %#v, want %#v", got, want)
		}
		if got.ID == "kid-2" && !bytes.Equal(got.PrivateKey, signingKey("kid-2", "", t0, true).PrivateKey) {
			t.Error("reseal changed another key")
		}
	}
	if err := s.ResealSigningKey(t.Context(), "absent", resealed); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reseal of an unknown kid: %v, want ErrNotFound", err)
	}
}
