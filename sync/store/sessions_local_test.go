package store

import (
	"fmt"
	"testing"
	"time"
)

// A watcher that falls behind by more than its queue forgets every session
// (Reset(true)) instead of blocking the statement that published, and
// hears what follows.
func TestLocalWatcherOverflowResets(t *testing.T) {
	s := &sqlStore{hub: &localHub{subs: map[*localSub]struct{}{}}}
	block := make(chan struct{})
	got := make(chan string, 16)
	var blocked bool
	w := s.watchLocal(SessionEvents{
		Session: func(id string) {
			if !blocked {
				blocked = true
				<-block // the watcher is stuck while the queue overflows
			}
			if id == "last" {
				got <- id
			}
		},
		User: func(string) {},
		Team: func(string) {},
		Reset: func(reconnected bool) {
			got <- fmt.Sprint("reset ", reconnected)
		},
	})
	defer w.Close()
	if e := recv(t, got); e != "reset false" {
		t.Fatalf("first event %q, want reset false", e)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range localSubQueue + 10 { // never blocks, though nobody reads
			s.hub.publish(fmt.Sprint("s", i))
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("publish blocked on a watcher that fell behind")
	}
	close(block)
	if e := recv(t, got); e != "reset true" {
		t.Fatalf("after the overflow: %q, want reset true", e)
	}
	// What follows is heard once the queue has room again; until then a
	// publish is dropped, and the watcher resets again, as it should.
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.hub.publish("last")
		e := recv(t, got)
		if e == "last" {
			break
		}
		if e != "reset true" || time.Now().After(deadline) {
			t.Fatalf("after the reset: %q, want last (or another reset while the queue is full)", e)
		}
		time.Sleep(time.Millisecond)
	}
}

// recv waits (boundedly) for the next event.
func recv(t *testing.T, c <-chan string) string {
	t.Helper()
	select {
	case e := <-c:
		return e
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
		return ""
	}
}

// Close takes the watcher off its hub; a rename reaches a watcher without a
// Team function as a Reset.
func TestLocalWatcherCloseAndTeamFallback(t *testing.T) {
	s := &sqlStore{hub: &localHub{subs: map[*localSub]struct{}{}}}
	got := make(chan string, 4)
	w := s.watchLocal(SessionEvents{
		Session: func(string) {},
		User:    func(string) {},
		Reset:   func(reconnected bool) { got <- fmt.Sprint("reset ", reconnected) },
	})
	if e := recv(t, got); e != "reset false" {
		t.Fatalf("first event %q", e)
	}
	s.hub.publish(TeamPayloadPrefix + "g1")
	if e := recv(t, got); e != "reset false" {
		t.Fatalf("a rename without Team: %q, want reset false", e)
	}
	w.Close()
	s.hub.mu.Lock()
	n := len(s.hub.subs)
	s.hub.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d watchers on the hub after Close, want 0", n)
	}
}
