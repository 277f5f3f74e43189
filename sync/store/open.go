package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // driver "postgres"
	_ "modernc.org/sqlite" // driver "sqlite"
)

// Option tunes Open.
type Option func(*options)

type options struct {
	maxOpen, maxIdle int
	maxLifetime      time.Duration
	logger           *slog.Logger
	attempts         int
}

// WithMaxOpenConns caps the pool (0: no limit). On SQLite it caps the
// readers; writes always use a single connection.
func WithMaxOpenConns(n int) Option { return func(o *options) { o.maxOpen = n } }

// WithMaxIdleConns sets how many idle connections the pool keeps.
func WithMaxIdleConns(n int) Option { return func(o *options) { o.maxIdle = n } }

// WithConnMaxLifetime recycles connections after d (0: never).
func WithConnMaxLifetime(d time.Duration) Option { return func(o *options) { o.maxLifetime = d } }

// WithLogger receives transaction retries (at debug level). Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTxAttempts bounds how many times InTx runs fn when the database reports
// a transient conflict (default 5; 1 disables retries).
func WithTxAttempts(n int) Option { return func(o *options) { o.attempts = n } }

// sqlStore implements Store for both dialects.
type sqlStore struct {
	d *dialect
	// w carries every write. On SQLite it holds exactly one connection:
	// SQLite admits one writer at a time anyway, and queueing writers in the
	// Go pool is fair and cheap, where queueing them in SQLite's busy handler
	// means sleeping and polling. r carries reads; on PostgreSQL (and for an
	// in-memory SQLite database) it is the same pool as w.
	w, r *sqlx.DB

	statements atomic.Int64
	log        *slog.Logger
	attempts   int
	// sleep waits between transaction attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
	// leaderScope names the SQLite database for TryLeader (background.go).
	leaderScope string
	// hub carries revocations to this process's watchers on SQLite
	// (sessions_local.go); nil on PostgreSQL.
	hub *localHub
	// dsn is the PostgreSQL connection string, for the session listener
	// (sessions_notify.go). Never logged: it may hold a password.
	dsn string
}

// Open connects to the database named by url ("sqlite:PATH" or
// "postgres://…") and checks that it answers. It does not migrate: call
// Migrate (teamgate does at start-up, and in `teamgate migrate`).
//
// SQLite runs in WAL mode with a 10 s busy timeout, foreign keys on, and
// BEGIN IMMEDIATE transactions, so a transaction that will write takes the
// write lock up front instead of failing on a lock upgrade.
func Open(ctx context.Context, url string, opts ...Option) (Store, error) {
	def := Defaults()
	o := options{maxOpen: def.MaxOpenConns, maxIdle: def.MaxIdleConns, maxLifetime: def.ConnMaxLifetime, attempts: 5}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.attempts < 1 {
		o.attempts = 1
	}
	name, dsn, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	s := &sqlStore{d: newDialect(name), log: o.logger, attempts: o.attempts, sleep: sleepCtx}
	switch name {
	case DialectSQLite:
		err = s.openSQLite(dsn, o)
	default:
		err = s.openPostgres(dsn, o)
	}
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", RedactURL(url), err)
	}
	if name == DialectPostgres {
		if err := s.initChannel(ctx); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("store: %s: %w", RedactURL(url), err)
		}
	}
	return s, nil
}

func (s *sqlStore) openSQLite(path string, o options) error {
	s.leaderScope = s.sqliteLeaderScope(path)
	s.hub = localHubFor(s.leaderScope)
	const common = "_busy_timeout=10000&_foreign_keys=1"
	if path == ":memory:" {
		// Every connection would see its own empty database: use one.
		db, err := sqlx.Open("sqlite", path+"?"+common+"&_txlock=immediate")
		if err != nil {
			return fmt.Errorf("store: open sqlite: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		s.w, s.r = db, db
		return nil
	}
	w, err := sqlx.Open("sqlite", path+"?"+common+"&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	// Readers are query_only: a read path that tried to write would fail
	// loudly instead of contending with the writer.
	// Readers get a 512 KiB page cache each (SQLite's default is 2 MiB): the
	// pool holds up to max_open_conns of them and they read by key, while
	// the one writer keeps the default for large reconciles.
	r, err := sqlx.Open("sqlite", path+"?"+common+"&_query_only=1&_pragma=cache_size(-512)")
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	setPool(r, o)
	s.w, s.r = w, r
	return nil
}

func (s *sqlStore) openPostgres(dsn string, o options) error {
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return fmt.Errorf("store: open postgres: %w", errors.New("invalid connection settings")) // the driver's message may quote the DSN
	}
	setPool(db, o)
	s.w, s.r = db, db
	s.dsn = dsn
	return nil
}

func setPool(db *sqlx.DB, o options) {
	db.SetMaxOpenConns(o.maxOpen)
	db.SetMaxIdleConns(o.maxIdle)
	db.SetConnMaxLifetime(o.maxLifetime)
}

// Ping checks both pools (the writer first: on SQLite it creates the file
// and switches it to WAL before any reader opens it).
func (s *sqlStore) Ping(ctx context.Context) error {
	s.statements.Add(1)
	if err := s.w.PingContext(ctx); err != nil {
		return err
	}
	if s.r != s.w {
		return s.r.PingContext(ctx)
	}
	return nil
}

// Stats counts every statement sent, including BEGIN, COMMIT and ROLLBACK
// (each counts as one) and Ping (one per call).
func (s *sqlStore) Stats() Stats { return Stats{Statements: s.statements.Load()} }

func (s *sqlStore) Dialect() string { return s.d.name }

func (s *sqlStore) Close() error {
	var errs []error
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// runner sends statements through a pool, connection or transaction and
// counts them.
type runner struct {
	ext interface {
		sqlx.QueryerContext
		sqlx.ExecerContext
	}
	n *atomic.Int64
	// hub (SQLite only) hears the revocations the statements make
	// (sessions_local.go); pending, in a transaction, holds them until it
	// commits.
	hub     *localHub
	pending *[]string
}

func (s *sqlStore) reader() runner { return runner{ext: s.r, n: &s.statements} }
func (s *sqlStore) writer() runner { return runner{ext: s.w, n: &s.statements, hub: s.hub} }

func (r runner) get(ctx context.Context, dest any, query string, args ...any) error {
	r.n.Add(1)
	return sqlx.GetContext(ctx, r.ext, dest, query, args...)
}

func (r runner) sel(ctx context.Context, dest any, query string, args ...any) error {
	r.n.Add(1)
	return sqlx.SelectContext(ctx, r.ext, dest, query, args...)
}

func (r runner) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	r.n.Add(1)
	return r.ext.ExecContext(ctx, query, args...)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var _ Store = (*sqlStore)(nil)
