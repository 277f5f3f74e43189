package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Migrations are embedded, numbered SQL files, one directory per dialect
// with the same numbers in both: migrations/<dialect>/NNNN_name.sql. Each is
// applied in its own transaction together with its row in
// schema_migrations, so a failed migration leaves no trace and is retried at
// the next start.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	Version int
	Name    string
	SQL     string
}

// loadMigrations reads the dialect's migrations in order and checks that
// they are numbered 1, 2, 3, … without gaps or duplicates.
func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations for %s: %w", dialect, err)
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("store: migration %s/%s: name must be NNNN_description.sql", dir, name)
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(b)})
	}
	// fs.ReadDir sorts by name and numbers are zero-padded, so this is
	// numeric order as long as the padding is consistent; check it is.
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("store: migrations for %s: expected number %d, found %s", dialect, i+1, m.Name)
		}
	}
	return out, nil
}

// Migrate applies the migrations not yet recorded in schema_migrations. It
// is safe to run from several processes at once: on PostgreSQL it holds an
// advisory lock (scoped to the current schema) while migrating; on SQLite
// each migration transaction takes the database's write lock at BEGIN and
// re-checks whether its version was applied meanwhile.
func (s *sqlStore) Migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.d.name)
	if err != nil {
		return err
	}
	if s.d.name == DialectSQLite {
		return s.migrate(ctx, s.w, ms)
	}
	conn, err := s.w.Connx(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	// The session-level lock belongs to this connection; it must be released
	// before the connection returns to the pool, even if ctx has ended.
	const lockKey = "SELECT pg_advisory_lock(7305, hashtext(coalesce(current_schema(), '')))"
	const unlockKey = "SELECT pg_advisory_unlock(7305, hashtext(coalesce(current_schema(), '')))"
	run := runner{ext: conn, n: &s.statements}
	if _, err := run.exec(ctx, lockKey); err != nil {
		return fmt.Errorf("store: migrate: take advisory lock: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := run.exec(uctx, unlockKey); err != nil {
			// Drop the connection: closing the session frees the lock.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return s.migrate(ctx, conn, ms)
}

// beginner is a pool or a pinned connection.
type beginner interface {
	sqlx.QueryerContext
	sqlx.ExecerContext
	BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error)
}

func (s *sqlStore) migrate(ctx context.Context, db beginner, ms []migration) error {
	stampType := "timestamptz"
	if s.d.name == DialectSQLite {
		stampType = "TEXT"
	}
	run := runner{ext: db, n: &s.statements}
	if _, err := run.exec(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at "+stampType+" NOT NULL)"); err != nil {
		return fmt.Errorf("store: migrate: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := s.applyMigration(ctx, db, m); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlStore) applyMigration(ctx context.Context, db beginner, m migration) (err error) {
	s.statements.Add(1)
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migration %s: begin: %w", m.Name, err)
	}
	defer func() {
		if err != nil {
			s.statements.Add(1)
			_ = tx.Rollback()
		}
	}()
	run := runner{ext: tx, n: &s.statements}
	var applied int
	if err := run.get(ctx, &applied, "SELECT count(*) FROM schema_migrations WHERE version = $1", m.Version); err != nil {
		return fmt.Errorf("store: migration %s: %w", m.Name, err)
	}
	if applied > 0 {
		s.statements.Add(1) // another process applied it meanwhile
		_ = tx.Rollback()
		return nil
	}
	if _, err := run.exec(ctx, m.SQL); err != nil {
		return fmt.Errorf("store: migration %s: %w", m.Name, err)
	}
	if _, err := run.exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
		m.Version, m.Name, s.d.time(time.Now())); err != nil {
		return fmt.Errorf("store: migration %s: record: %w", m.Name, err)
	}
	s.statements.Add(1)
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migration %s: commit: %w", m.Name, err)
	}
	return nil
}
