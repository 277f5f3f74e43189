package main

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"
)

// demoUpstream stands in for LiteLLM in `teamgate dev`: it shows the
// identity headers it received and streams a short server-sent-events demo,
// so a newcomer can see what the real upstream would be told.
func demoUpstream() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream", demoStream)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			demoPage(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "identity": identityHeaders(r),
		})
	})
	return mux
}

type headerRow struct{ Name, Value string }

func identityHeaders(r *http.Request) map[string]string {
	out := map[string]string{}
	for name, vals := range r.Header {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, "x-forwarded-") || strings.HasPrefix(l, "x-litellm-") || l == "authorization" {
			v := strings.Join(vals, ", ")
			if l == "authorization" {
				v = "(present, not shown)"
			}
			out[name] = v
		}
	}
	return out
}

var demoTmpl = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>teamgate demo upstream</title>
<style>body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #bbb;padding:.4rem;text-align:left;vertical-align:top;word-break:break-all}
code{background:#f3f3f3;padding:0 .2rem}</style></head>
<body><h1>Demo upstream</h1>
<p>This page stands in for LiteLLM. teamgate forwarded your request to <code>{{.Path}}</code> with these identity headers:</p>
<table><thead><tr><th scope="col">Header</th><th scope="col">Value</th></tr></thead><tbody>
{{range .Rows}}<tr><td><code>{{.Name}}</code></td><td>{{.Value}}</td></tr>{{else}}<tr><td colspan="2">none</td></tr>{{end}}
</tbody></table>
<p><a href="/stream">Open a streamed (server-sent events) response</a> &middot; <a href="/teamgate/me">My teams</a> &middot; <a href="/oauth2/sign_out">Sign out</a></p>
</body></html>`))

func demoPage(w http.ResponseWriter, r *http.Request) {
	id := identityHeaders(r)
	var rows []headerRow
	for k, v := range id {
		rows = append(rows, headerRow{k, v})
	}
	slices.SortFunc(rows, func(a, b headerRow) int { return strings.Compare(a.Name, b.Name) })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	demoTmpl.Execute(w, map[string]any{"Path": r.URL.Path, "Rows": rows})
}

// demoStream sends ten events, one every 300 ms, like a streamed completion.
func demoStream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	user := r.Header.Get("X-Forwarded-User")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(w, "data: {\"event\":%d,\"user\":%q,\"at\":%q}\n\n", i, user, time.Now().Format(time.RFC3339Nano))
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}
