package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/teamgate/teamgate/gateway/assertion"
	"github.com/teamgate/teamgate/sync/store"
)

// From assertion.key_file back to stored keys: `keys rotate` runs under
// key_file, the key_file replica publishes the rotated key without signing
// with it, and a replica started without key_file once its time has come
// signs with the rotated key, not with a key generated at start.
func TestKeysRotateUnderKeyFileThenStartWithoutIt(t *testing.T) {
	cfgPath, _ := writeKeysConfig(t)
	withFile, keyFile := withKeyFile(t, cfgPath)
	cfg, err := loadConfig(withFile, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, st store.Store) {
		fileReplica, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256, KeyFile: keyFile,
			Store: keyAdapter{st}, Secrets: cfg.Session.Secrets()})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := keysRotate(t.Context(), st, cfg, 0, &out); err != nil {
			t.Fatalf("keys rotate under key_file: %v", err)
		}
		if !strings.Contains(out.String(), "publish_key_files") {
			t.Errorf("rotate under key_file does not say to publish the old file:\n%s", out.String())
		}
		rotated := rotatedKid(t, out.String())
		if _, err := fileReplica.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if fileReplica.Signing().ID == rotated || !slices.Contains(jwksKidsOf(t, fileReplica), rotated) {
			t.Fatalf("key_file replica signs %s, JWKS %v; want the file key signing and %s published",
				fileReplica.Signing().ID, jwksKidsOf(t, fileReplica), rotated)
		}
		k, ok := keyByID(t, st, rotated)
		if !ok || k.ActivateAt == nil || k.Active {
			t.Fatalf("rotated key: present %v, %+v", ok, k)
		}

		// key_file removed (rolling restart) once the key's time has come;
		// the old file is still published.
		var logs bytes.Buffer
		ks, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256, Store: keyAdapter{st},
			Secrets: cfg.Session.Secrets(), PublishKeyFiles: []string{keyFile}, Now: func() time.Time { return k.ActivateAt.Add(time.Second) },
			Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if ks.Signing().ID != rotated {
			t.Errorf("without key_file signs %s, want the rotated key %s", ks.Signing().ID, rotated)
		}
		keys, err := st.SigningKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].ID != rotated || !keys[0].Active {
			t.Errorf("stored keys %+v, want only the rotated key, active", keys)
		}
		if kids := jwksKidsOf(t, ks); !slices.Contains(kids, fileReplica.Signing().ID) {
			t.Errorf("JWKS %v lacks the old key file", kids)
		}
		if logs.Len() != 0 {
			t.Errorf("unexpected log:\n%s", logs.String())
		}
	})
}

func jwksKidsOf(t *testing.T, ks *assertion.KeySet) []string {
	t.Helper()
	body, _ := ks.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}
