package main

import "github.com/teamgate/teamgate/sync/store"

// watchSessions makes revocations on other replicas (sign-out, "sign out
// everywhere", sessions ended by re-validation) take effect on this one at
// once: on PostgreSQL the store notifies every replica (LISTEN/NOTIFY) and
// the gateway forgets the sessions it hears about. Without it the other
// replicas would serve a revoked session from their cache for up to
// session.cache_ttl. It returns nil on SQLite (one replica) or for a store
// that cannot watch; the caller closes what it returns.
func (a *app) watchSessions() *store.SessionWatch {
	sw, ok := a.store.(store.SessionWatcher)
	if !ok || a.store.Dialect() != store.DialectPostgres {
		return nil
	}
	w, err := sw.WatchSessions(store.SessionEvents{
		Session: a.gateway.RevokeSession,
		User:    a.gateway.RevokeUserSessions,
		Team:    a.gateway.RevokeTeamSessions,
		Reset: func(reconnected bool) {
			a.gateway.PurgeSessions()
			if reconnected {
				a.log.Warn("session listener reconnected: forgot every cached session, since revocations on other replicas may have been missed")
			}
		},
		Disconnected: func(err error) {
			a.log.Warn("session listener lost its database connection; reconnecting (until then other replicas' sign-outs reach this one within session.cache_ttl)", "error", err)
		},
	})
	if err != nil {
		a.log.Warn("cannot listen for other replicas' sign-outs; they reach this one within session.cache_ttl", "error", err)
		return nil
	}
	return w
}
