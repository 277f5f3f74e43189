package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

const readinessTimeout = 3 * time.Second

// handleHealthz answers while the process runs: liveness only.
func (g *Gateway) handleHealthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// handleReadyz answers 200 only when teamgate can sign users in and serve
// sessions: the database answers and OIDC discovery is loaded.
func (g *Gateway) handleReadyz(c *gin.Context) {
	notReady := []string{}
	if g.deps.DB != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), readinessTimeout)
		err := g.deps.DB.Ping(ctx)
		cancel()
		if err != nil {
			g.log.Warn("readiness: database ping failed", "error", err)
			notReady = append(notReady, "database")
		}
	}
	if g.oidc.Load() == nil {
		notReady = append(notReady, "oidc_discovery")
	}
	if len(notReady) > 0 {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "not_ready": notReady})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}
