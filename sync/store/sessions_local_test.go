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
	if e := <-got; e != "reset false" {
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
	if e := <-got; e != "reset true" {
		t.Fatalf("after the overflow: %q, want reset true", e)
	}
	s.hub.publish("last")
	if e := <-got; e != "last" {
		t.Fatalf("after the reset: %q, want last", e)
	}
}
