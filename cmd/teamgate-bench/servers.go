package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// The upstream and the bare proxy run as child processes of the harness
// (`teamgate-bench upstream`, `teamgate-bench bareproxy`), so that each
// process's CPU time and memory are its own and no two servers share a Go
// scheduler or garbage collector with the load generator.

// chatReply is the upstream's answer to every ordinary request: a small
// chat-completion-shaped JSON body with a Content-Length, like a short
// non-streamed LiteLLM answer.
var chatReply = []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1767225600,` +
	`"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},` +
	`"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}`)

// upstreamHandler is the stand-in LiteLLM. GET /sse?events=N&interval=D
// streams N events, flushing each one; its data is the upstream's clock
// (Unix nanoseconds) just before the write, so a client on the same host
// can tell how long the event took to reach it. Everything else gets
// chatReply after the request body has been read.
func upstreamHandler() http.Handler {
	contentLength := strconv.Itoa(len(chatReply))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sse" {
			serveEvents(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{contentLength}
		_, _ = w.Write(chatReply)
	})
}

func serveEvents(w http.ResponseWriter, r *http.Request) {
	events, err := strconv.Atoi(r.URL.Query().Get("events"))
	if err != nil || events < 1 || events > 100000 {
		http.Error(w, "events: 1..100000", http.StatusBadRequest)
		return
	}
	interval, err := time.ParseDuration(r.URL.Query().Get("interval"))
	if err != nil || interval < 0 {
		http.Error(w, "interval: a duration", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	tick := time.NewTicker(max(interval, time.Microsecond))
	defer tick.Stop()
	buf := make([]byte, 0, 64)
	for i := 0; i < events; i++ {
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		}
		buf = append(buf[:0], "data: "...)
		buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
		buf = append(buf, "\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// bareProxy is the floor teamgate is measured against: one
// httputil.ReverseProxy hop doing what any reverse proxy does (rewrite the
// URL and Host, set X-Forwarded-*), with teamgate's connection pool sizes
// and copy-buffer pool, and nothing else. Without the buffer pool the hop
// itself is slower than teamgate (ReverseProxy then allocates 32 KiB per
// response), which would flatter teamgate.
func bareProxy(target *url.URL) http.Handler {
	return &httputil.ReverseProxy{
		BufferPool: &bufferPool{},
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// runChild runs one child server until ctx ends. It listens on an
// ephemeral loopback port and prints "listening ADDR" on stdout, which the
// parent waits for.
func runChild(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	upstream := fs.String("upstream", "", "bareproxy: the upstream URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var h http.Handler
	switch name {
	case "upstream":
		h = upstreamHandler()
	case "bareproxy":
		u, err := url.Parse(*upstream)
		if err != nil || u.Host == "" {
			return fmt.Errorf("bareproxy: --upstream must be an absolute URL, got %q", *upstream)
		}
		h = bareProxy(u)
	default:
		return fmt.Errorf("unknown child %q", name)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// bufferPool recycles the proxy's 32 KiB copy buffers, as teamgate does.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[32 << 10]byte); ok {
		return v[:]
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= 32<<10 {
		b.p.Put((*[32 << 10]byte)(buf[:32<<10]))
	}
}
