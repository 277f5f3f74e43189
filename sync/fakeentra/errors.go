package fakeentra

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeOAuthError answers a token or discovery request the way
// login.microsoftonline.com does: the OAuth error, an AADSTS-prefixed
// description and the numeric code in error_codes, plus trace ids.
func writeOAuthError(w http.ResponseWriter, status int, code string, aadsts int, msg string) {
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, msg, randomUUID(), randomUUID(), time.Now().UTC().Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{aadsts},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          randomUUID(),
		"correlation_id":    randomUUID(),
		"error_uri":         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

// writeGraphError answers in Microsoft Graph's error shape. Clients must
// branch on status and code, never on message, so messages are only
// approximately Microsoft's.
func writeGraphError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	reqID := randomUUID()
	clientReqID := r.Header.Get("client-request-id")
	if clientReqID == "" {
		clientReqID = reqID
	}
	w.Header().Set("request-id", reqID)
	w.Header().Set("client-request-id", clientReqID)
	writeJSON(w, status, map[string]any{
		"error": map[string]any{
			"code":    code,
			"message": msg,
			"innerError": map[string]any{
				"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
				"request-id":        reqID,
				"client-request-id": clientReqID,
			},
		},
	})
}

// randomToken returns n random bytes, base64url-encoded: codes, refresh
// tokens and other generated secrets are random, never derived.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
