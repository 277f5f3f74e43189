package store

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// This file classifies driver errors. Callers see the sentinel errors of
// store.go; the driver error stays in the chain (for logs and for isTransient).

// isTransient reports whether a failed transaction may succeed if run again:
// PostgreSQL serialization failures and deadlocks, SQLite busy/locked.
func isTransient(err error) bool {
	if err == nil {
		return false
	}
	if e := pq.As(err, pqerror.TRSerializationFailure, pqerror.TRDeadlockDetected); e != nil {
		return true
	}
	if code, ok := sqliteCode(err); ok {
		switch code & 0xff { // primary code of an extended result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

func sqliteCode(err error) (int, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

func isForeignKeyViolation(err error) bool {
	if pq.As(err, pqerror.ForeignKeyViolation) != nil {
		return true
	}
	code, ok := sqliteCode(err)
	return ok && code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

func isUniqueViolation(err error) bool {
	if pq.As(err, pqerror.UniqueViolation) != nil {
		return true
	}
	code, ok := sqliteCode(err)
	return ok && (code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || code == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
}

// wrapErr prefixes err with the operation and maps it to a sentinel:
// no rows → ErrNotFound, a foreign key pointing nowhere → ErrNotFound (the
// referenced team or user does not exist), a duplicate key → ErrConflict.
func wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	case isForeignKeyViolation(err):
		return fmt.Errorf("store: %s: referenced team or user does not exist: %w: %w", op, ErrNotFound, err)
	case isUniqueViolation(err):
		return fmt.Errorf("store: %s: %w: %w", op, ErrConflict, err)
	default:
		return fmt.Errorf("store: %s: %w", op, err)
	}
}
