package gateway

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// JWKSPath publishes the keys that verify identity assertions.
const JWKSPath = "/.well-known/teamgate/jwks.json"

// jwksMaxAge lets verifiers (LiteLLM caches JWKS itself) and caches reuse
// the document for five minutes; a key added by a rotation is published
// before it signs, so this delay does no harm.
const jwksMaxAge = "public, max-age=300"

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
	h.Set("Cache-Control", jwksMaxAge)
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
