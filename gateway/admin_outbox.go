package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

const (
	defaultOutboxLimit = 100
	maxOutboxLimit     = 1000
)

var outboxStatuses = map[string]bool{"": true, "pending": true, "parked": true, "done": true, "superseded": true}

// routeOutbox registers the outbox endpoints on the (authenticated) admin
// API group. Without Deps.Outbox (provisioning off) they answer 404.
func (g *Gateway) routeOutbox(api *gin.RouterGroup) {
	api.GET("/outbox", g.handleOutbox)
	api.POST("/outbox/:id/retry", g.handleOutboxRetry)
}

// outboxOff answers for the endpoints when provisioning is off.
func (g *Gateway) outboxOff(c *gin.Context) bool {
	if g.deps.Outbox != nil {
		return false
	}
	g.writeAPIError(c, &statusError{Status: http.StatusNotFound,
		Message: "LiteLLM provisioning is off (set litellm.master_key to turn it on)"})
	return true
}

// handleOutbox: GET /teamgate/api/outbox?status=pending|parked|done&limit=N
func (g *Gateway) handleOutbox(c *gin.Context) {
	if g.outboxOff(c) {
		return
	}
	status := c.Query("status")
	if !outboxStatuses[status] {
		g.writeAPIError(c, &statusError{Status: http.StatusBadRequest, Message: "status must be pending, parked, done or superseded"})
		return
	}
	limit := defaultOutboxLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxOutboxLimit {
			g.writeAPIError(c, &statusError{Status: http.StatusBadRequest,
				Message: "limit must be a number from 1 to " + strconv.Itoa(maxOutboxLimit)})
			return
		}
		limit = n
	}
	ops, err := g.deps.Outbox.ListOutbox(c.Request.Context(), status, limit)
	if err != nil {
		g.writeAPIError(c, directoryError(err))
		return
	}
	if ops == nil {
		ops = []AdminOutboxOp{}
	}
	for i := range ops {
		if len(ops[i].Body) == 0 {
			ops[i].Body = []byte("{}")
		}
	}
	c.JSON(http.StatusOK, ops)
}

// handleOutboxRetry: POST /teamgate/api/outbox/{id}/retry puts a parked
// operation back in line; it is delivered at the worker's next pass. A
// parked operation that a later one on the same subject supersedes is
// refused with 409 "superseded by operation N": delivering it would bring
// back a change LiteLLM has since been told to undo.
func (g *Gateway) handleOutboxRetry(c *gin.Context) {
	if g.outboxOff(c) {
		return
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		g.writeAPIError(c, &statusError{Status: http.StatusBadRequest, Message: "the operation id must be a positive number"})
		return
	}
	var superseded *SupersededError
	switch err := g.deps.Outbox.RetryOutbox(c.Request.Context(), id); {
	case err == nil:
		c.JSON(http.StatusOK, gin.H{"id": id, "status": "pending"})
	case errors.As(err, &superseded):
		msg := fmt.Sprintf("superseded by operation %d", superseded.By)
		if superseded.Delivered {
			msg += ", which is delivered; this operation is now marked superseded and will not be delivered"
		} else {
			msg += ", which is still queued; retry this one only if that operation parks too"
		}
		g.writeAPIError(c, &statusError{Status: http.StatusConflict, Type: "conflict", Message: msg})
	case errors.Is(err, ErrNotParked):
		g.writeAPIError(c, &statusError{Status: http.StatusConflict, Type: "conflict", Message: "only parked operations can be retried"})
	default:
		g.writeAPIError(c, directoryError(err))
	}
}
