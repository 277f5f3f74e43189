package litellm

import (
	"errors"
	"fmt"
	"time"
)

// ErrTransient marks failures worth retrying later: the network, timeouts,
// 5xx, 429 and 408. Test with errors.Is; RetryAfter gives LiteLLM's
// Retry-After when it sent one.
var ErrTransient = errors.New("litellm: transient failure")

// transientError is what Apply returns for a retryable failure. It wraps
// ErrTransient and the underlying cause (e.g. context.DeadlineExceeded).
type transientError struct {
	path          string
	status        int // 0 when no answer came
	msg           string
	retryAfter    time.Duration
	hasRetryAfter bool
	cause         error
}

func (e *transientError) Error() string {
	var s string
	if e.status != 0 {
		s = fmt.Sprintf("litellm %s: transient failure: HTTP %d", e.path, e.status)
		if e.msg != "" {
			s += ": " + e.msg
		}
	} else {
		s = fmt.Sprintf("litellm %s: transient failure", e.path)
		if e.cause != nil {
			s += ": " + e.cause.Error()
		}
	}
	if e.hasRetryAfter {
		s += fmt.Sprintf(" (retry after %s)", e.retryAfter)
	}
	return s
}

func (e *transientError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrTransient}
	}
	return []error{ErrTransient, e.cause}
}

// RetryAfter reports the delay LiteLLM asked for with a Retry-After header on
// a transient failure (429 or 503 usually).
func RetryAfter(err error) (time.Duration, bool) {
	var te *transientError
	if errors.As(err, &te) && te.hasRetryAfter {
		return te.retryAfter, true
	}
	return 0, false
}

// PermanentError is a 4xx answer that retrying cannot fix (bad request,
// unknown team, wrong master key, …). The outbox parks such an op with this
// error as its cause.
type PermanentError struct {
	Status  int
	Type    string // LiteLLM's error type (e.g. "auth_error", "bad_request_error"), when it sent one
	Message string // LiteLLM's message, unwrapped from its Python-repr envelope, bounded
	Path    string // the management endpoint, e.g. "/team/member_add"
}

func (e *PermanentError) Error() string {
	s := fmt.Sprintf("litellm %s: HTTP %d", e.Path, e.Status)
	if e.Type != "" {
		s += " " + e.Type
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// IsPermanent reports whether err is (or wraps) a *PermanentError.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}
