package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

const (
	defaultSyncEventsLimit = 50
	maxSyncEventsLimit     = 500
)

// adminAuth guards /teamgate/api/. With no token configured the API does
// not exist (404); otherwise the bearer token must match, compared in
// constant time over fixed-length digests so that neither content nor length
// leaks through timing.
func (g *Gateway) adminAuth(c *gin.Context) {
	if !g.adminAuthorized(c) {
		c.Abort()
		return
	}
	c.Next()
}

// adminAuthorized reports whether the request carries the admin API token;
// when it does not, it has answered: 404 while the API is off, else 401.
// Unknown paths and methods under /teamgate/api/ pass through it too
// (newEngine), so that only an authorised client learns which routes exist.
func (g *Gateway) adminAuthorized(c *gin.Context) bool {
	var refusal *statusError
	if g.cfg.Admin.APIToken == "" {
		refusal = errNotFound()
	} else {
		token, ok := bearerToken(c.Request.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(sum[:], g.adminTokenSum[:]) != 1 {
			refusal = &statusError{Status: http.StatusUnauthorized,
				Message: "a valid admin API token is required (Authorization: Bearer <token>)"}
		}
	}
	if refusal == nil {
		return true
	}
	// Before a 405, gin has already listed the path's methods in Allow; a
	// refused client must not see them.
	c.Writer.Header().Del("Allow")
	g.writeAPIError(c, refusal)
	return false
}

// isAdminAPIPath reports whether p (normalised, see classifyPath) is the
// admin API's: /teamgate/api or below, in any letter case.
func isAdminAPIPath(p string) bool {
	return hasPrefixFold(p, "/teamgate/api/") || strings.EqualFold(p, "/teamgate/api")
}

func bearerToken(header string) (string, bool) {
	const prefix = "Bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	token := strings.TrimSpace(header[len(prefix):])
	return token, token != ""
}

// writeAPIError answers the admin API in JSON whatever the client accepts.
func (g *Gateway) writeAPIError(c *gin.Context, e *statusError) {
	g.respondError(c.Writer, c.Request, e, false)
}

// directoryError maps a Directory failure to the answer.
func directoryError(err error) *statusError {
	if errors.Is(err, ErrNotFound) {
		return &statusError{Status: http.StatusNotFound, Message: "not found"}
	}
	return &statusError{Status: http.StatusServiceUnavailable, Message: "the database is unavailable", Cause: err}
}

func (g *Gateway) handleTeams(c *gin.Context) {
	teams, err := g.deps.Directory.Teams(c.Request.Context())
	if err != nil {
		g.writeAPIError(c, directoryError(err))
		return
	}
	if teams == nil {
		teams = []AdminTeam{}
	}
	for i := range teams {
		normalizeTeam(&teams[i])
	}
	c.JSON(http.StatusOK, teams)
}

func (g *Gateway) handleTeam(c *gin.Context) {
	team, err := g.deps.Directory.Team(c.Request.Context(), c.Param("team_id"))
	if err != nil {
		g.writeAPIError(c, directoryError(err))
		return
	}
	normalizeTeam(&team)
	c.JSON(http.StatusOK, team)
}

func (g *Gateway) handleUser(c *gin.Context) {
	user, err := g.deps.Directory.User(c.Request.Context(), c.Param("user_id"))
	if err != nil {
		g.writeAPIError(c, directoryError(err))
		return
	}
	if user.Models == nil {
		user.Models = []string{}
	}
	if user.Teams == nil {
		user.Teams = []string{}
	}
	c.JSON(http.StatusOK, user)
}

func (g *Gateway) handleSyncEvents(c *gin.Context) {
	limit := defaultSyncEventsLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxSyncEventsLimit {
			g.writeAPIError(c, &statusError{Status: http.StatusBadRequest,
				Message: "limit must be a number from 1 to " + strconv.Itoa(maxSyncEventsLimit)})
			return
		}
		limit = n
	}
	kind := c.Query("kind")
	if kind != "" && kind != "signin" && kind != "background" && kind != "revalidate" && kind != "admin" {
		g.writeAPIError(c, &statusError{Status: http.StatusBadRequest,
			Message: "kind must be one of signin, background, revalidate, admin"})
		return
	}
	events, err := g.deps.Directory.SyncEvents(c.Request.Context(), c.Query("user_id"), kind, limit)
	if err != nil {
		g.writeAPIError(c, directoryError(err))
		return
	}
	if events == nil {
		events = []AdminSyncEvent{}
	}
	for i := range events {
		e := &events[i]
		for _, s := range []*[]string{&e.TeamsCreated, &e.TeamsRenamed, &e.TeamsUnassigned, &e.MembershipsAdded, &e.MembershipsRemoved} {
			if *s == nil {
				*s = []string{}
			}
		}
	}
	c.JSON(http.StatusOK, events)
}

// normalizeTeam makes list fields JSON arrays, never null.
func normalizeTeam(t *AdminTeam) {
	if t.Models == nil {
		t.Models = []string{}
	}
	if t.Members == nil {
		t.Members = []AdminMember{}
	}
}

// UserSessionRevoker is implemented by session stores that can end every
// session of a user at once ("sign out everywhere").
type UserSessionRevoker interface {
	// RevokeUserSessions deletes every session of userID and returns how
	// many there were (0 for an unknown user).
	RevokeUserSessions(ctx context.Context, userID string) (int, error)
}

// revokeSessionsAnswer is the admin API's answer to revoke-sessions.
type revokeSessionsAnswer struct {
	UserID          string `json:"user_id"`
	SessionsRevoked int    `json:"sessions_revoked"`
}

// handleRevokeSessions signs a user out everywhere: their sessions are
// deleted from the database and forgotten by this replica at once; other
// replicas stop honouring them within session.cache_ttl. It is idempotent.
func (g *Gateway) handleRevokeSessions(c *gin.Context) {
	revoker, ok := g.deps.Sessions.(UserSessionRevoker)
	if !ok {
		g.writeAPIError(c, &statusError{Status: http.StatusNotImplemented,
			Message: "this session store cannot revoke a user's sessions"})
		return
	}
	userID := c.Param("user_id")
	if userID == "" || !validHeaderValue(userID) {
		g.writeAPIError(c, &statusError{Status: http.StatusBadRequest, Message: "invalid user id"})
		return
	}
	n, err := revoker.RevokeUserSessions(c.Request.Context(), userID)
	if err != nil {
		g.writeAPIError(c, directoryError(err))
		return
	}
	g.sessions.revokeUser(userID)
	g.forgetAssertions(userID)
	g.log.Info("revoked every session of a user", "user_id", userID, "sessions", n,
		"request_id", requestInfoFrom(c.Request.Context()).id)
	c.JSON(http.StatusOK, revokeSessionsAnswer{UserID: userID, SessionsRevoked: n})
}
