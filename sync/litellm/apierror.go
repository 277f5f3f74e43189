package litellm

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// maxMessage bounds the message kept from an error answer: it ends up in the
// outbox, the admin API and the log.
const maxMessage = 500

// apiError is LiteLLM's error answer, from whichever envelope it came in.
type apiError struct {
	Type    string
	Message string
}

// parseError decodes the three error envelopes LiteLLM uses:
//
//   - ProxyException: {"error":{"message":"…","type":"…","param":"…","code":"400"}},
//     where message is often Python's repr of a dict: "{'error': '…'}";
//   - FastAPI's HTTPException: {"detail":{"error":"…"}}, {"detail":{"message":"…"}}
//     or {"detail":"…"};
//   - request validation (422): {"detail":[{"loc":[…],"msg":"…","type":"…"}]}.
//
// Anything else (an HTML error page from a load balancer) is kept as bounded
// text. The master key and anything that looks like a virtual key are
// redacted, in case a LiteLLM version echoes them.
func parseError(body []byte, masterKey string) apiError {
	var env struct {
		Error  json.RawMessage `json:"error"`
		Detail json.RawMessage `json:"detail"`
	}
	var e apiError
	if err := json.Unmarshal(body, &env); err == nil && (len(env.Error) > 0 || len(env.Detail) > 0) {
		switch {
		case len(env.Error) > 0:
			e = fromErrorField(env.Error)
		default:
			e = fromDetailField(env.Detail)
		}
	} else {
		e.Message = strings.TrimSpace(string(body))
	}
	e.Message = bound(redact(unwrapPythonRepr(e.Message), masterKey))
	e.Type = bound(redact(e.Type, masterKey))
	return e
}

// fromErrorField reads {"error": {...}} or {"error": "…"}.
func fromErrorField(raw json.RawMessage) apiError {
	var obj struct {
		Message json.RawMessage `json:"message"`
		Type    json.RawMessage `json:"type"`
	}
	if err := json.Unmarshal(raw, &obj); err == nil {
		return apiError{Type: jsonText(obj.Type), Message: jsonText(obj.Message)}
	}
	return apiError{Message: jsonText(raw)}
}

// fromDetailField reads {"detail": {"error": …}}, {"detail": "…"} and the
// 422 list of validation problems.
func fromDetailField(raw json.RawMessage) apiError {
	var list []struct {
		Loc  []any  `json:"loc"`
		Msg  string `json:"msg"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &list); err == nil {
		parts := make([]string, 0, len(list))
		typ := ""
		for _, p := range list {
			loc := make([]string, 0, len(p.Loc))
			for _, l := range p.Loc {
				loc = append(loc, fmt.Sprint(l))
			}
			parts = append(parts, strings.Join(loc, ".")+": "+p.Msg)
			if typ == "" {
				typ = p.Type
			}
		}
		return apiError{Type: typ, Message: strings.Join(parts, "; ")}
	}
	// /team/info puts {"message": …} where the others put {"error": …}.
	var obj struct {
		Error   json.RawMessage `json:"error"`
		Message json.RawMessage `json:"message"`
		Type    json.RawMessage `json:"type"`
	}
	if err := json.Unmarshal(raw, &obj); err == nil && (len(obj.Error) > 0 || len(obj.Message) > 0) {
		msg := jsonText(obj.Error)
		if msg == "" {
			msg = jsonText(obj.Message)
		}
		return apiError{Type: jsonText(obj.Type), Message: msg}
	}
	return apiError{Message: jsonText(raw)}
}

// jsonText renders a JSON value as text: a string as itself, anything else
// (a number code, an object) as its JSON.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	return string(raw)
}

// pythonRepr matches "{'error': '…'}" and "{'error': \"…\"}", the repr of the
// dict LiteLLM puts into an HTTPException's detail before a ProxyException
// stringifies it.
var pythonRepr = regexp.MustCompile(`^\{\s*'(?:error|detail|message)'\s*:\s*(?:'(.*)'|"(.*)")\s*\}$`)

// unwrapPythonRepr returns the inner text of a Python-repr'd dict, so the
// message reads "Team id = X already exists…" rather than "{'error': …}".
func unwrapPythonRepr(s string) string {
	s = strings.TrimSpace(s)
	m := pythonRepr.FindStringSubmatch(s)
	if m == nil {
		return s
	}
	inner := m[1]
	if inner == "" {
		inner = m[2]
	}
	return strings.NewReplacer(`\'`, `'`, `\"`, `"`, `\\`, `\`).Replace(inner)
}

// virtualKey matches LiteLLM keys ("sk-…"): they are credentials wherever
// they appear.
var virtualKey = regexp.MustCompile(`sk-[A-Za-z0-9_\-]{4,}`)

// keyHash matches the hash of the presented key that LiteLLM's 401 message
// carries ("Key Hash (Token) =<sha256>"): it is the key's id in LiteLLM's
// database, so it is not repeated either.
var keyHash = regexp.MustCompile(`(Key Hash \(Token\) =)\s*[0-9a-fA-F]{16,}`)

// redact removes the master key, anything that looks like a key and key
// hashes.
func redact(s, masterKey string) string {
	if masterKey != "" {
		s = strings.ReplaceAll(s, masterKey, "[REDACTED]")
	}
	s = keyHash.ReplaceAllString(s, "${1}[REDACTED]")
	return virtualKey.ReplaceAllString(s, "sk-[REDACTED]")
}

// bound cuts s to maxMessage bytes on a rune boundary.
func bound(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// contains is a case-insensitive substring test.
func contains(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
