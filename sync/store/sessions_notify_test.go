package store_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// sessionEventLog records a watcher's events as strings.
type sessionEventLog chan string

func (c sessionEventLog) events() store.SessionEvents {
	return store.SessionEvents{
		Session: func(id string) { c <- "session " + id },
		User:    func(id string) { c <- "user " + id },
		Team:    func(id string) { c <- "team " + id },
		Reset: func(reconnected bool) {
			if reconnected {
				c <- "reset reconnected"
			} else {
				c <- "reset"
			}
		},
		Disconnected: func(error) { c <- "disconnected" },
	}
}

// next waits (boundedly) for the next event other than "disconnected".
func (c sessionEventLog) next(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case got := <-c:
			if got == "disconnected" && want != got {
				continue
			}
			if got != want {
				t.Fatalf("session event %q, want %q", got, want)
			}
			return
		case <-deadline:
			t.Fatalf("no session event %q within 30s", want)
		}
	}
}

func sessionUser(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	err := s.InTx(t.Context(), func(tx store.Tx) error {
		for _, id := range ids {
			if _, _, err := tx.UpsertUser(t.Context(), store.UserIdentity{ID: id, Email: id + "@example.com"},
				store.UserParams{UserRole: "internal_user"}, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		for _, sid := range []string{id + "-s1", id + "-s2"} {
			if err := s.CreateSession(t.Context(), store.Session{ID: sid, UserID: id, CreatedAt: time.Now(),
				ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A replica hears, at once, the sessions another replica deletes or ends,
// the users and teams that changed, only those, and only after the change
// committed. On SQLite (one process) the "replicas" are two stores on one
// file in this process.
func TestSessionNotifications(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			rs := storetest.Replicas(t, backend, 2)
			a, b := rs[0], rs[1]
			sessionUser(t, b, "u1", "u2")
			w, log := watching(t, a)

			// Another deployment's (another schema of the same database, on a
			// channel of its own; another SQLite file): not heard.
			other := storetest.New(t, backend)
			sessionUser(t, other, "x1")
			if err := other.DeleteSession(t.Context(), "x1-s1"); err != nil {
				t.Fatal(err)
			}
			if n, err := other.EndUserSessions(t.Context(), "x1", "account_disabled", time.Now()); err != nil || n != 1 {
				t.Fatalf("EndUserSessions(x1) on the other database = %d, %v; want 1", n, err)
			}
			if backend == store.DialectPostgres && (!strings.HasPrefix(w.Channel(), store.SessionsChannel+"_") || len(w.Channel()) != len(store.SessionsChannel)+17) {
				t.Fatalf("the watcher of a store in a schema of its own listens on %q, want %s_ and 16 hex digits", w.Channel(), store.SessionsChannel)
			}

			// Nothing changed, nothing heard: the next event is the next change.
			if err := b.DeleteSession(t.Context(), "nope"); err != nil {
				t.Fatal(err)
			}
			if n, err := b.EndUserSessions(t.Context(), "ghost", "account_disabled", time.Now()); err != nil || n != 0 {
				t.Fatalf("EndUserSessions(ghost) = %d, %v", n, err)
			}
			if err := b.DeleteSession(t.Context(), "u1-s1"); err != nil {
				t.Fatal(err)
			}
			log.next(t, "session u1-s1")
			if n, err := b.EndUserSessions(t.Context(), "u2", "account_disabled", time.Now()); err != nil || n != 2 {
				t.Fatalf("EndUserSessions = %d, %v; want 2", n, err)
			}
			log.next(t, "user u2")
			if n, err := b.DeleteUserSessions(t.Context(), "u1"); err != nil || n != 1 {
				t.Fatalf("DeleteUserSessions = %d, %v; want 1", n, err)
			}
			log.next(t, "user u1")

			// A renamed team: its members' sessions name it by its old alias.
			// A "rename" to the same alias changes nothing and sends nothing;
			// a rename rolled back sends nothing.
			rename := func(alias string, fail error) {
				t.Helper()
				if err := b.InTx(t.Context(), func(tx store.Tx) error {
					if _, err := tx.RenameTeams(t.Context(), map[string]string{"g1": alias, "g2": "Two"}, time.Now()); err != nil {
						return err
					}
					return fail
				}); !errors.Is(err, fail) {
					t.Fatalf("rename to %q: %v, want %v", alias, err, fail)
				}
			}
			if err := b.InTx(t.Context(), func(tx store.Tx) error {
				_, err := tx.InsertTeams(t.Context(), []store.Team{{ID: "g1", Alias: "One"}, {ID: "g2", Alias: "Two"}}, time.Now())
				return err
			}); err != nil {
				t.Fatal(err)
			}
			rename("One", nil)
			rename("Eins", errors.New("rolled back"))
			rename("Uno", nil)
			log.next(t, "team g1")

			// A membership change, heard on commit; one rolled back is not.
			member := func(fail error) {
				t.Helper()
				if err := b.InTx(t.Context(), func(tx store.Tx) error {
					if _, err := tx.AddMemberships(t.Context(), "u2", []string{"g2"}, "user", store.SourceEntra, time.Now()); err != nil {
						return err
					}
					return fail
				}); !errors.Is(err, fail) {
					t.Fatalf("add membership: %v, want %v", err, fail)
				}
			}
			member(errors.New("rolled back"))
			member(nil)
			log.next(t, "user u2")

			// Joining or leaving an administrators group (the admin pages)
			// is heard; setting the flag it already has is not.
			admin := func(in bool) {
				t.Helper()
				if err := b.InTx(t.Context(), func(tx store.Tx) error { return tx.SetInAdminGroup(t.Context(), "u1", in) }); err != nil {
					t.Fatal(err)
				}
			}
			admin(false)
			admin(true)
			log.next(t, "user u1")
			select {
			case e := <-log:
				t.Fatalf("unexpected session event %q", e)
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
}

// A watcher that is closed stops hearing (SQLite: it leaves the hub).
func TestSessionWatchClosedHearsNothing(t *testing.T) {
	s := storetest.New(t, store.DialectSQLite)
	sessionUser(t, s, "u1")
	w, log := watching(t, s)
	w.Close()
	w.Close() // idempotent
	if err := s.DeleteSession(t.Context(), "u1-s1"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-log:
		t.Fatalf("a closed watcher heard %q", e)
	case <-time.After(100 * time.Millisecond):
	}
}

// A watcher whose connection is lost reconnects, tells its owner to forget
// every session (it may have missed revocations) and hears the next ones.
func TestSessionNotificationsReconnect(t *testing.T) {
	rs := storetest.Replicas(t, store.DialectPostgres, 2)
	a, b := rs[0], rs[1]
	sessionUser(t, b, "u1")
	w, log := watching(t, a)

	// Its backend, found by the listener's own application_name: no other
	// test's listener is touched.
	if !strings.Contains(w.ApplicationName(), "/sessions-") {
		t.Fatalf("listener application_name = %q", w.ApplicationName())
	}
	if n := storetest.KillSessionListener(t, w); n != 1 {
		t.Fatalf("terminated %d backends named %q, want the watcher's one", n, w.ApplicationName())
	}
	log.next(t, "disconnected")
	log.next(t, "reset reconnected")
	if err := b.DeleteSession(t.Context(), "u1-s2"); err != nil {
		t.Fatal(err)
	}
	log.next(t, "session u1-s2")
}

// watching starts a watcher on s (closed at cleanup; closing it earlier is
// fine), waits until it listens and takes its first event, the reset.
func watching(t *testing.T, s store.Store) (*store.SessionWatch, sessionEventLog) {
	t.Helper()
	log := sessionEventLog(make(chan string, 64))
	w, err := s.(store.SessionWatcher).WatchSessions(log.events())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	waitReady(t, w)
	log.next(t, "reset")
	return w, log
}

func waitReady(t *testing.T, w *store.SessionWatch) {
	t.Helper()
	select {
	case <-w.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("the session watcher did not start listening within 30s")
	}
}

// Close stops the watcher's goroutines and its connection's.
func TestSessionWatchCloseLeavesNoGoroutine(t *testing.T) {
	s := storetest.New(t, store.DialectPostgres)
	base := runtime.NumGoroutine()
	w, err := s.(store.SessionWatcher).WatchSessions(sessionEventLog(make(chan string, 8)).events())
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, w)
	w.Close()
	w.Close() // idempotent
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before WatchSessions", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
