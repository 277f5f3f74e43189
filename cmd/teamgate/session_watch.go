package main

import "github.com/teamgate/teamgate/sync/store"

// watchSessions makes revocations (sign-out, "sign out everywhere",
// sessions ended by re-validation) and changes of a user's teams or of a
// team's name take effect on this replica's session cache at once, wherever
// they were made: on PostgreSQL the store notifies every replica
// (LISTEN/NOTIFY); on SQLite (one process) it tells this process's watchers
// (an admin removing a member, a background sync, a sign-in). The gateway
// forgets the sessions it hears about. Without it a cached session would be
// served unchanged for up to session.cache_ttl. It returns nil for a store
// that cannot watch; the caller closes what it returns.
func (a *app) watchSessions() *store.SessionWatch {
	sw, ok := a.store.(store.SessionWatcher)
	if !ok {
		return nil
	}
	w, err := sw.WatchSessions(store.SessionEvents{
		Session: a.gateway.RevokeSession,
		User:    a.gateway.RevokeUserSessions,
		Team:    a.gateway.RevokeTeamSessions,
		Reset: func(reconnected bool) {
			a.gateway.PurgeSessions()
			switch {
			case !reconnected:
			case a.store.Dialect() == store.DialectPostgres:
				a.log.Warn("session listener reconnected: forgot every cached session, since revocations on other replicas may have been missed")
			default:
				a.log.Warn("session listener fell behind: forgot every cached session, since revocations may have been missed")
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
