package store_test

import (
	"testing"

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

func TestMigrateFromEmptyAndTwice(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s store.Store) {
		// storetest.New migrated once already; each further run is a no-op.
		for i := range 2 {
			before := s.Stats().Statements
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate #%d: %v", i+2, err)
			}
			if s.Stats().Statements == before {
				t.Errorf("Migrate #%d sent no statement; want it to check schema_migrations", i+2)
			}
		}
		if _, err := s.Teams(t.Context(), store.TeamFilter{}); err != nil {
			t.Errorf("schema unusable after migrations: %v", err)
		}
	})
}
