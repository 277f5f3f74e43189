package teamsync_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
	"github.com/teamgate/teamgate/sync/teamsync"
)

// staticDirectory answers from memory, so the benchmark measures the
// reconcile and the database, not an HTTP fake.
type staticDirectory struct {
	groups []graph.Group
}

func (d staticDirectory) User(_ context.Context, id string) (graph.UserProfile, error) {
	return graph.UserProfile{ID: id, DisplayName: id, UserPrincipalName: id + "@example.com"}, nil
}
func (d staticDirectory) UserGroups(context.Context, string) ([]graph.Group, error) {
	return d.groups, nil
}
func (d staticDirectory) AppGroupsAt(context.Context) ([]graph.Group, time.Time, error) {
	return d.groups, time.Now(), nil
}
func (d staticDirectory) HasServicePrincipal() bool { return true }

// BenchmarkReconcile reports time and SQL statements per reconcile for a
// user in 10, 250 and 2,000 groups, on SQLite and (with
// TEAMGATE_TEST_POSTGRES_URL) PostgreSQL. "steady" is a returning user whose
// groups did not change; "first" is a new user joining existing teams.
func BenchmarkReconcile(b *testing.B) {
	for _, backend := range storetest.Backends() {
		if backend == store.DialectPostgres && os.Getenv(storetest.EnvPostgresURL) == "" {
			b.Logf("skipping postgres: set %s", storetest.EnvPostgresURL)
			continue
		}
		for _, n := range []int{10, 250, 2000} {
			groups := make([]graph.Group, n)
			for i := range groups {
				groups[i] = graph.Group{ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), DisplayName: fmt.Sprintf("Group %d", i)}
			}
			for _, mode := range []string{"steady", "first"} {
				b.Run(fmt.Sprintf("%s/groups=%d/%s", backend, n, mode), func(b *testing.B) {
					st := storetest.New(b, backend)
					r := teamsync.New(staticDirectory{groups}, st, defaults, teamsync.WithLogger(slog.New(slog.DiscardHandler)))
					ctx := context.Background()
					if _, err := r.Reconcile(ctx, teamsync.Identity{UserID: "warm"}); err != nil {
						b.Fatal(err)
					}
					before := st.Stats().Statements
					b.ResetTimer()
					for i := 0; b.Loop(); i++ {
						user := "warm"
						if mode == "first" {
							user = fmt.Sprintf("user-%d", i)
						}
						if _, err := r.Reconcile(ctx, teamsync.Identity{UserID: user}); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(st.Stats().Statements-before)/float64(b.N), "stmts/op")
				})
			}
		}
	}
}
