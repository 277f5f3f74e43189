package store

import (
	"strings"
	"sync"
)

// Revocations on SQLite. SQLite serves one teamgate process, so there is no
// other replica to tell; but that process's own session cache must hear
// them too, or a member an admin removed would go on acting for the team
// until session.cache_ttl. The same statements that notify on PostgreSQL
// publish the same payloads to a hub in this process, one per database
// file (every store opened on it in this process hears them): at once for
// a statement outside a transaction, on commit (and never on rollback) for
// one inside.

// localHubs holds the hub of each SQLite database open in this process,
// by leaderScope (its absolute path).
var localHubs = struct {
	mu   sync.Mutex
	hubs map[string]*localHub
}{hubs: map[string]*localHub{}}

func localHubFor(scope string) *localHub {
	localHubs.mu.Lock()
	defer localHubs.mu.Unlock()
	h := localHubs.hubs[scope]
	if h == nil {
		h = &localHub{subs: map[*localSub]struct{}{}}
		localHubs.hubs[scope] = h
	}
	return h
}

// localHub fans payloads out to the watchers of one database.
type localHub struct {
	mu   sync.Mutex
	subs map[*localSub]struct{}
}

// localSubQueue bounds a watcher's backlog; past it the watcher forgets
// every session instead (Reset), as after a lost PostgreSQL connection.
const localSubQueue = 4096

type localSub struct {
	ch chan string
	// overflow is set when a payload was dropped, and wake then gets a
	// value (if it has none): the watcher resets, whether or not its queue
	// is empty by the time it looks.
	mu       sync.Mutex
	overflow bool
	wake     chan struct{}
}

func (h *localHub) publish(payloads ...string) {
	if h == nil || len(payloads) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		for _, p := range payloads {
			select {
			case sub.ch <- p:
			default:
				sub.mu.Lock()
				sub.overflow = true
				sub.mu.Unlock()
				select {
				case sub.wake <- struct{}{}:
				default:
				}
			}
		}
	}
}

func (h *localHub) subscribe() *localSub {
	sub := &localSub{ch: make(chan string, localSubQueue), wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	return sub
}

func (h *localHub) unsubscribe(sub *localSub) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

// tookOverflow reports (and clears) a dropped payload.
func (sub *localSub) tookOverflow() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	o := sub.overflow
	sub.overflow = false
	return o
}

// note publishes payloads through r: on commit when r is a transaction's,
// else at once. Nothing on PostgreSQL (the statements notify there).
func (r runner) note(payloads ...string) {
	switch {
	case r.hub == nil || len(payloads) == 0:
	case r.pending != nil:
		*r.pending = append(*r.pending, payloads...)
	default:
		r.hub.publish(payloads...)
	}
}

// watchLocal starts a SQLite watcher on the store's hub.
func (s *sqlStore) watchLocal(ev SessionEvents) *SessionWatch {
	sub := s.hub.subscribe()
	w := &SessionWatch{ready: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	w.closeFn = func() { s.hub.unsubscribe(sub) }
	go func() {
		defer close(w.done)
		ev.Reset(false)
		close(w.ready)
		for {
			select {
			case p := <-sub.ch:
				dispatch(ev, p)
			case <-sub.wake:
				// Something was dropped: forget every session. What is
				// still queued is dispatched after (harmless: a session
				// forgotten twice).
				if sub.tookOverflow() {
					ev.Reset(true)
				}
			case <-w.stop:
				return
			}
		}
	}()
	return w
}

// dispatch passes one payload to ev.
func dispatch(ev SessionEvents, payload string) {
	switch {
	case strings.HasPrefix(payload, UserPayloadPrefix):
		ev.User(strings.TrimPrefix(payload, UserPayloadPrefix))
	case strings.HasPrefix(payload, TeamPayloadPrefix):
		if ev.Team == nil { // a watcher that cannot tell a team's members
			ev.Reset(false)
			return
		}
		ev.Team(strings.TrimPrefix(payload, TeamPayloadPrefix))
	case payload != "":
		ev.Session(payload)
	}
}
