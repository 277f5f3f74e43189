package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"sync"
	"testing"
	"time"
)

// The reference for FuzzFramingScanner: net/http's server connection loop
// (conn.serve / conn.readRequest) modelled with http.ReadRequest, and
// checked against a real http.Server serving the same bytes through
// FramingListener.

// refRequest is one request net/http's connection loop reads from a
// stream, as long as the connection stays open.
type refRequest struct {
	framingBlock
	h2   bool   // "PRI * HTTP/2.0": served, no header block for the scanner, the last one
	desc string // what the handler sees (describeRequest)
}

// describeRequest is a request as a handler sees it, body included.
func describeRequest(r *http.Request, body []byte, bodyErr error) string {
	return fmt.Sprintf("%s %q %s %v cl=%d te=%q body=%q bodyErr=%v",
		r.Method, r.RequestURI, r.Proto, r.Header, r.ContentLength, r.TransferEncoding, body, bodyErr != nil)
}

// serverLoop reads data as net/http's server reads a connection (if every
// request kept it open) and returns every request it reads, where its
// header block ended, whether it is faulty (chunked with a Content-Length
// in its raw header, or HTTP/1.0 with a Transfer-Encoding) and whether the
// scanner stops there (chunked or faulty).
func serverLoop(data []byte) []refRequest {
	var out []refRequest
	r := bytes.NewReader(data)
	br := bufio.NewReader(r)
	pos := func() int { return len(data) - r.Len() - br.Buffered() }
	lastMethod := ""
	for {
		if lastMethod == "POST" {
			// conn.readRequest: "RFC 7230 section 3 tolerance for old
			// buggy clients".
			peek, _ := br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			br.Discard(n)
		}
		start := pos()
		req, err := http.ReadRequest(br)
		if err != nil {
			return out // refused: the server closes the connection
		}
		if req.ProtoMajor != 1 {
			// http1ServerSupportsRequest: only the HTTP/2 preface is
			// served (and the connection closed after it); the rest
			// is refused with 505.
			if req.ProtoMajor == 2 && req.ProtoMinor == 0 && req.Method == "PRI" && req.RequestURI == "*" {
				delete(req.Header, "Host")
				body, err := io.ReadAll(req.Body)
				out = append(out, refRequest{h2: true, desc: describeRequest(req, body, err)})
			}
			return out
		}
		// The raw header, before net/http dropped Content-Length (or
		// Transfer-Encoding on HTTP/1.0).
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(data[start:])))
		tp.ReadLine()
		raw, err := tp.ReadMIMEHeader()
		if err != nil {
			panic("net/http accepted a header textproto refuses: " + err.Error())
		}
		_, cl := raw["Content-Length"]
		_, te := raw["Transfer-Encoding"]
		chunked := len(req.TransferEncoding) > 0
		fault := chunked && cl && te || req.ProtoMinor == 0 && te
		end := pos()
		delete(req.Header, "Host") // conn.readRequest does
		body, err := io.ReadAll(req.Body)
		out = append(out, refRequest{
			framingBlock: framingBlock{end: end, fault: fault, stopped: chunked || fault},
			desc:         describeRequest(req, body, err),
		})
		if err != nil {
			return out
		}
		lastMethod = req.Method
	}
}

// servedRequest is what the test handler saw of one request.
type servedRequest struct {
	refused bool // framingFault said faulty: 400 and the connection closed
	desc    string
}

// serveFramed serves data as one connection through a real http.Server
// with FramingListener (the connection's reads return at most chunk bytes,
// any number if 0), with a handler that does what Gateway.ServeHTTP does
// about framing and reads every body. It returns the requests served, in
// order, and the bytes the server wrote.
func serveFramed(t testing.TB, data []byte, chunk int) ([]servedRequest, []byte) {
	t.Helper()
	var (
		mu     sync.Mutex
		served []servedRequest
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fault := framingFault(r)
		body, err := io.ReadAll(r.Body)
		mu.Lock()
		served = append(served, servedRequest{refused: fault != nil, desc: describeRequest(r, body, err)})
		mu.Unlock()
		w.Header().Set("X-Served", "yes")
		if len(r.TransferEncoding) > 0 || fault != nil {
			w.Header().Set("Connection", "close")
		}
		if fault != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	c := &scriptConn{data: data, chunk: chunk, closed: make(chan struct{})}
	ln := &oneConnListener{c: c, done: make(chan struct{})}
	srv := &http.Server{
		Handler:                      h,
		ConnContext:                  FramingConnContext,
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     log.New(io.Discard, "", 0),
	}
	stopped := make(chan struct{})
	go func() { defer close(stopped); srv.Serve(FramingListener(ln)) }()
	select {
	case <-c.closed:
	case <-time.After(time.Minute):
		t.Fatalf("the server never closed the connection: %q", data)
	}
	srv.Close()
	<-stopped
	mu.Lock()
	defer mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	return served, c.out
}

// checkFraming compares, on one stream, the scanner and a real server with
// FramingListener against the model of net/http's connection loop.
func checkFraming(t testing.TB, data []byte, chunk int) {
	t.Helper()
	ref := serverLoop(data)

	// The real server: every request it served is the next one the
	// model read (the model has no reason to stop earlier; the server
	// may: Connection: close, HTTP/1.0 without keep-alive, a missing
	// Host, an unsupported Expect), refused exactly when faulty, and
	// the connection ends after a chunked or faulty one.
	got, out := serveFramed(t, data, chunk)
	if len(got) > len(ref) {
		t.Fatalf("the server served %d requests, the model of its loop read %d: %+v\n%+v\n%q", len(got), len(ref), got, ref, data)
	}
	for i, g := range got {
		w := ref[i]
		if g.desc != w.desc {
			t.Fatalf("request %d: the server served %s, the model read %s: %q", i, g.desc, w.desc, data)
		}
		if g.refused != w.fault {
			t.Fatalf("request %d (%s): refused %v, faulty %v (chunk %d): %q\nserver wrote %q", i, g.desc, g.refused, w.fault, chunk, data, out)
		}
		if (w.stopped || w.h2) && i < len(got)-1 {
			t.Fatalf("request %d (%s): the connection went on after it: %q", i, g.desc, data)
		}
	}

	// The scanner: the same header block ends, faults and stops, up to
	// where it stops.
	var want []framingBlock
	for _, r := range ref {
		if r.h2 {
			break
		}
		want = append(want, r.framingBlock)
		if r.stopped {
			break
		}
	}
	blocks, _ := scanBytewise(data)
	for i, w := range want {
		if i >= len(blocks) {
			t.Fatalf("net/http reads request %d (%+v) but the scanner stopped after %d blocks: %q", i, w, len(blocks), data)
		}
		if blocks[i].end != w.end || blocks[i].fault != w.fault || w.stopped && !blocks[i].stopped {
			t.Fatalf("request %d: scanner %+v, net/http %+v: %q", i, blocks[i], w, data)
		}
	}
	// Whole reads and byte-sized ones agree.
	var s framingScanner
	whole := s.scan(data)
	if len(blocks) > 0 && blocks[len(blocks)-1].fault != whole && s.blocks == len(blocks) {
		t.Fatalf("scanning at once: fault %v, byte by byte %v: %q", whole, blocks[len(blocks)-1].fault, data)
	}
	if s.blocks != len(blocks) {
		t.Fatalf("scanning at once: %d blocks, byte by byte %d: %q", s.blocks, len(blocks), data)
	}
}

// scriptConn is a client connection that sends data (at most chunk bytes
// per read) and then ends; it keeps what the server writes.
type scriptConn struct {
	mu     sync.Mutex
	data   []byte
	off    int
	chunk  int
	out    []byte
	once   sync.Once
	closed chan struct{}
}

func (c *scriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off >= len(c.data) {
		return 0, io.EOF
	}
	if c.chunk > 0 && len(p) > c.chunk {
		p = p[:c.chunk]
	}
	n := copy(p, c.data[c.off:])
	c.off += n
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, p...)
	return len(p), nil
}

func (c *scriptConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// oneConnListener accepts c once, then waits until closed.
type oneConnListener struct {
	mu   sync.Mutex
	c    net.Conn
	once sync.Once
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.c
	l.c = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{} }
