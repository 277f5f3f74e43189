package store_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			storetest.RunConformance(t, func(t *testing.T) store.Store { return storetest.New(t, backend) })
		})
	}
}

func TestReplicaConformance(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			storetest.RunReplicaConformance(t, func(t *testing.T, n int) []store.Store { return storetest.Replicas(t, backend, n) })
		})
	}
}

// storetest.New migrates an empty database; running Migrate again must
// change nothing and keep the data.
func TestMigrateTwiceIsNoOp(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s store.Store) {
		if err := s.AddManualMembership(t.Context(), "t", "u", "user", time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("schema not in place after the first Migrate: %v", err)
		}
		for i := range 2 {
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate #%d: %v", i+2, err)
			}
		}
		if _, err := s.Teams(t.Context(), store.TeamFilter{}); err != nil {
			t.Errorf("schema unusable after migrating again: %v", err)
		}
	})
}

// A database URL whose search_path names no schema that exists is refused at
// Open with the reason (the tables, and the revocation channel, would have
// nowhere to be).
func TestOpenPostgresWithoutSchema(t *testing.T) {
	base := storetest.PostgresURL(t) // a fresh schema; its URL sets search_path
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", "teamgate_no_such_schema")
	u.RawQuery = q.Encode()
	s, err := store.Open(t.Context(), u.String())
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with a search_path naming no existing schema")
	}
	if !strings.Contains(err.Error(), "search_path") {
		t.Errorf("Open: %v, want the reason (search_path)", err)
	}
}
