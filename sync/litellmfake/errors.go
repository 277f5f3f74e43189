package litellmfake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeProxyError answers in the envelope of LiteLLM's ProxyException
// handler: {"error":{"message","type","param","code"}}, code as a string.
func writeProxyError(w http.ResponseWriter, status int, typ, param, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"message": message,
		"type":    typ,
		"param":   param,
		"code":    strconv.Itoa(status),
	}})
}

// writeWrappedHTTPError is an HTTPException(detail={key: message}) that an
// endpoint passed through handle_exception_on_proxy: the ProxyException
// envelope with the detail dict's Python repr as message and type
// internal_server_error whatever the status (as /team/new and /user/new do).
func writeWrappedHTTPError(w http.ResponseWriter, status int, key, message string) {
	writeProxyError(w, status, "internal_server_error", "None", pyDict(key, message))
}

// writeDetailError is a bare FastAPI HTTPException(detail={"error": …}), as
// the endpoints without handle_exception_on_proxy answer (/team/update,
// /team/member_add, /team/member_delete, /team/block).
func writeDetailError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"detail": map[string]any{"error": message}})
}

// writeValidationError is FastAPI's 422 for a body that does not fit the
// pydantic model.
func writeValidationError(w http.ResponseWriter, loc []any, typ, msg string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []any{
		map[string]any{"type": typ, "loc": loc, "msg": msg, "input": nil},
	}})
}

// pyDict renders {key: value} as Python's str() of a dict would.
func pyDict(key, value string) string {
	return "{" + pyStr(key) + ": " + pyStr(value) + "}"
}

// pyStr is Python's repr of a str: single quotes unless the text holds a
// single quote and no double quote.
func pyStr(s string) string {
	q := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = `"`
	}
	var b strings.Builder
	b.WriteString(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case string(r) == q:
			b.WriteString(`\` + q)
		case r == '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(q)
	return b.String()
}

// pyMembers renders a members_with_roles list roughly as pydantic's repr,
// for the "already in team" message.
func pyMembers(ms []Member) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = "Member(user_email=None, user_id=" + pyStr(m.UserID) + ", role=" + pyStr(m.Role) + ")"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func lastN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
