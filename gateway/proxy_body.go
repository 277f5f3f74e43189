package gateway

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
)

// watchedBody notes a failure to read the client's request body. The
// transport reads the body on its own goroutine and reports the failure as
// if the round trip had failed, so without this a malformed upload (a
// broken chunked encoding, say) would be answered "502, the service behind
// teamgate failed" and logged as an upstream error.
type watchedBody struct {
	io.ReadCloser
	failed *atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.failed.Store(true)
	}
	return n, err
}

// watchBody wraps an outbound request body so that proxyError can tell a
// broken client request (400) from a broken upstream (502). The wrapper
// lives in info, which outlives the transport's use of the body.
func watchBody(out *http.Request, info *requestInfo) {
	if out.Body != nil && out.Body != http.NoBody {
		info.body = watchedBody{ReadCloser: out.Body, failed: &info.badBody}
		out.Body = &info.body
	}
}

// errBadRequestBody answers a request whose body could not be read.
func errBadRequestBody(cause error) *statusError {
	return &statusError{Status: http.StatusBadRequest, Title: "Bad request",
		Message: "The request body could not be read (malformed or cut short).", Cause: cause}
}
