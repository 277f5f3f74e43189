// Package graph is a small Microsoft Graph client (no SDK) for what teamgate's
// sync needs: a user's profile and groups, the Enterprise App's assignments,
// and /groups/delta rounds for background reconciliation, with app-only
// tokens, paging, bounded retries and typed errors.
package graph

import (
	"errors"
	"fmt"
)

// Group is an Entra group as teamgate sees it.
type Group struct {
	ID          string
	DisplayName string
}

// Application permissions that Graph calls need; errors name them.
const (
	PermGroupMemberReadAll = "GroupMember.Read.All"
	PermApplicationReadAll = "Application.Read.All"
	PermUserReadAll        = "User.Read.All"
)

// ErrUnavailable is wrapped by every error that means "Graph or the token
// endpoint could not answer now" (network errors, 5xx, throttling past the
// retry budget, timeouts): the user should try again later.
var ErrUnavailable = errors.New("microsoft graph unavailable")

// PermissionError means the app lacks an application permission (HTTP 403
// Authorization_RequestDenied, or items returned in limited-information form).
// It is never retried.
type PermissionError struct {
	Permission string // the missing application permission, e.g. GroupMember.Read.All
	Endpoint   string // path that failed, without query
	Status     int    // HTTP status (200 for limited-information answers)
	Code       string // Graph error code, if any
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("microsoft graph: %s denied (status %d %s): the application needs the %s application permission with admin consent",
		e.Endpoint, e.Status, e.Code, e.Permission)
}

// APIError is any other non-success Graph answer (e.g. 400, 404).
type APIError struct {
	Endpoint string
	Status   int
	Code     string
	Message  string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("microsoft graph: %s: status %d %s: %s", e.Endpoint, e.Status, e.Code, e.Message)
}

// Unwrap makes server-side failures (5xx other than the retried 503/504)
// match ErrUnavailable; client errors (4xx) match nothing.
func (e *APIError) Unwrap() error {
	if e.Status >= 500 {
		return ErrUnavailable
	}
	return nil
}
