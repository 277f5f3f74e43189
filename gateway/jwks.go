package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// JWKSPath publishes the keys that verify identity assertions.
const JWKSPath = "/.well-known/teamgate/jwks.json"

// JWKSMaxAge lets verifiers (LiteLLM caches JWKS itself) and caches reuse
// the document for five minutes. A key added by `teamgate keys rotate` is
// published (within assertion.key_refresh on every replica) for at least
// this long before it signs, so the delay does no harm.
const JWKSMaxAge = 5 * time.Minute

var jwksCacheControl = "public, max-age=" + strconv.Itoa(int(JWKSMaxAge/time.Second))

// routeJWKS registers the JWKS endpoint when assertions are on.
func (g *Gateway) routeJWKS(e *gin.Engine) {
	if g.assert == nil {
		return
	}
	e.GET(JWKSPath, g.handleJWKS)
	e.HEAD(JWKSPath, g.handleJWKS)
}

func (g *Gateway) handleJWKS(c *gin.Context) {
	body, etag := g.assert.keys.JWKS()
	h := c.Writer.Header()
	h.Set("Cache-Control", jwksCacheControl)
	h.Set("ETag", etag)
	if etagMatches(c.Request.Header.Values("If-None-Match"), etag) {
		c.Writer.WriteHeader(http.StatusNotModified)
		c.Writer.WriteHeaderNow()
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.Writer.WriteHeader(http.StatusOK)
	if c.Request.Method == http.MethodHead {
		c.Writer.WriteHeaderNow()
		return
	}
	_, _ = c.Writer.Write(body)
}

// etagMatches implements If-None-Match: "*" or any listed tag equal to
// etag under the weak comparison RFC 9110 prescribes for this header.
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}
