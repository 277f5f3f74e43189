package gateway

import "slices"

// Revocations and changes made elsewhere: on other replicas, or on this one
// by code that does not hold the gateway (a background sync). The store
// notifies every replica when sessions are deleted or ended, a user's teams
// change or a team is renamed (sync/store/sessions_notify.go: LISTEN/NOTIFY
// on PostgreSQL, in-process on SQLite) and the app passes what it hears
// here, so a sign-out on one replica is refused by the others at once
// instead of after session.cache_ttl. Each bumps the revocation epoch like a
// local revocation, so a lookup that was in flight cannot cache the session
// again.

// RevokeSession forgets a session on this replica at once. sessionID is the
// session's stored id (the hash of the cookie's session id).
func (g *Gateway) RevokeSession(sessionID string) {
	g.sessions.revoke(sessionID)
}

// RevokeUserSessions forgets every session of a user on this replica at
// once, with their cached assertions.
func (g *Gateway) RevokeUserSessions(userID string) {
	g.sessions.revokeUser(userID)
	g.forgetAssertions(userID)
}

// RevokeTeamSessions forgets every session on this replica whose user is a
// member of teamID (the team was renamed: the cached sessions name it, and
// order their teams, by its old alias). Their next request reads them
// again.
func (g *Gateway) RevokeTeamSessions(teamID string) {
	g.sessions.revokeTeam(teamID)
}

// revokeTeam forgets every session whose principal has teamID, at once.
func (s *sessionResolver) revokeTeam(teamID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	s.cache.deleteWhere(func(e *principalEntry) bool {
		return slices.ContainsFunc(e.principal.Teams, func(t TeamRef) bool { return t.ID == teamID })
	})
}

// PurgeSessions forgets every cached session on this replica: revocations
// may have been missed (the database connection that hears them was lost).
// Every session is looked up again on its next request.
func (g *Gateway) PurgeSessions() {
	g.sessions.purge()
}

// purge forgets every session on this replica at once.
func (s *sessionResolver) purge() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	s.cache.deleteWhere(func(*principalEntry) bool { return true })
}
