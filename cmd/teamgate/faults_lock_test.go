package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Holding a reconcile in the middle of its transaction, so that the fault
// tests cut the database or kill teamgate while a sign-in has written its
// user, teams and memberships but not committed them.
//
// A reconcile's last statement is the insert of its sync event
// (sync/teamsync/reconcile.go: InsertSyncEvent, after the user, the teams,
// the memberships and the outbox operations). An administrator's
// transaction holding sync_events in EXCLUSIVE mode lets every read through
// but makes that insert wait: the reconcile then stands still with all its
// other writes done and uncommitted.

// tableLock is an open transaction holding a table lock.
type tableLock struct {
	db *sql.DB
	tx *sql.Tx
}

// lockTable takes `LOCK TABLE table IN EXCLUSIVE MODE` on dbURL's schema
// and holds it until release (or the test's end).
func lockTable(t *testing.T, dbURL, table string) *tableLock {
	t.Helper()
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// The transaction outlives this call: database/sql would roll it back
	// when the context given to BeginTx ended.
	tx, err := db.BeginTx(context.Background(), nil)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = tx.ExecContext(ctx, "LOCK TABLE "+table+" IN EXCLUSIVE MODE")
		cancel()
	}
	if err != nil {
		db.Close()
		t.Fatalf("lock %s: %v", table, err)
	}
	l := &tableLock{db: db, tx: tx}
	t.Cleanup(l.release)
	return l
}

// release ends the lock's transaction (idempotent).
func (l *tableLock) release() {
	if l.tx != nil {
		l.tx.Rollback()
		l.db.Close()
		l.tx = nil
	}
}

// waitingInserts counts the connections tagged appName whose insert into
// sync_events waits for a lock.
func waitingInserts(t *testing.T, dbURL, appName string) int {
	t.Helper()
	return sqlInt(t, dbURL, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '"+appName+
		"' AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO sync_events%'")
}

// waitForWaitingInserts polls until at least n reconciles of appName's
// connections wait on the lock, and returns how many do.
func waitForWaitingInserts(t *testing.T, dbURL, appName string, n int, logs func() string) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if got := waitingInserts(t, dbURL, appName); got >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sign-in reached the insert of its sync event within a minute; connections:\n%s\nlog:\n%s",
				activity(t, dbURL, appName), logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// activity describes appName's connections, for a failure message.
func activity(t *testing.T, dbURL, appName string) string {
	t.Helper()
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "SELECT coalesce(application_name, ''), coalesce(state, ''), coalesce(wait_event_type, ''), coalesce(wait_event, ''), left(query, 60) FROM pg_stat_activity WHERE application_name LIKE 'teamgate%'")
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var app, state, wt, we, q string
		rows.Scan(&app, &state, &wt, &we, &q)
		fmt.Fprintf(&b, "%s %s %s/%s %q (want %s)\n", app, state, wt, we, q, appName)
	}
	return b.String()
}
