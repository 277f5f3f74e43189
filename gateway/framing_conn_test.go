package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The interfaces net/http looks for on a connection (server.go: closeWriter
// in closeWriteAndWait, io.ReaderFrom in response.ReadFrom) survive
// FramingListener's wrapper, and it adds none that a plain TCP connection
// lacks (connectionStater would make net/http report TLS).
func TestFramingConnKeepsConnInterfaces(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fln := FramingListener(ln)
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := fln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("the wrapped connection hides CloseWrite")
	}
	rf, ok := c.(io.ReaderFrom)
	if !ok {
		t.Fatal("the wrapped connection hides ReadFrom")
	}
	if _, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
		t.Fatal("the wrapped connection claims a TLS state")
	}

	// ReadFrom writes to the peer.
	if n, err := rf.ReadFrom(strings.NewReader("hello")); n != 5 || err != nil {
		t.Fatalf("ReadFrom: %d, %v", n, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("the peer read %q, %v", buf, err)
	}
	// CloseWrite half-closes: the peer reads EOF and can still send.
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if n, err := client.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after CloseWrite the peer read %d bytes, %v; want EOF", n, err)
	}
	io.WriteString(client, "still open")
	got := make([]byte, len("still open"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "still open" {
		t.Fatalf("after CloseWrite: read %q, %v", got, err)
	}

	// Over a connection without either, CloseWrite says so and ReadFrom
	// still copies.
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	var pc net.Conn = &framingConn{Conn: p1}
	if err := pc.(interface{ CloseWrite() error }).CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseWrite on a pipe: %v", err)
	}
	go pc.(io.ReaderFrom).ReadFrom(strings.NewReader("pipe"))
	pb := make([]byte, 4)
	if _, err := io.ReadFull(p2, pb); err != nil || string(pb) != "pipe" {
		t.Errorf("ReadFrom on a pipe: the peer read %q, %v", pb, err)
	}
}

// spyConn records which of the wrapped connection's methods net/http
// reached through FramingListener.
type spyConn struct {
	*net.TCPConn
	closeWrite, readFrom *atomic.Bool
}

func (c spyConn) CloseWrite() error {
	c.closeWrite.Store(true)
	return c.TCPConn.CloseWrite()
}

func (c spyConn) ReadFrom(r io.Reader) (int64, error) {
	c.readFrom.Store(true)
	return c.TCPConn.ReadFrom(r)
}

type spyListener struct {
	net.Listener
	closeWrite, readFrom atomic.Bool
}

func (l *spyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return spyConn{c.(*net.TCPConn), &l.closeWrite, &l.readFrom}, nil
}

// Through a real http.Server: net/http's RST avoidance (a response that
// leaves a large request body unread half-closes the connection first) and
// its sendfile/splice path reach the connection under the wrapper.
func TestFramingListenerKeepsNetHTTPConnPaths(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	spy := &spyListener{Listener: ln}
	const size = 64 << 10
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			framingFault(r)
			if r.URL.Path == "/upload" {
				// Refused unread, as a 401 or 413 on a large upload.
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				return
			}
			w.Header().Set("Content-Length", fmt.Sprint(size))
			// Not a WriterTo, so that io.Copy uses the response's ReadFrom.
			io.Copy(w, struct{ io.Reader }{strings.NewReader(strings.Repeat("x", size))})
		}),
		ConnContext:                  FramingConnContext,
		DisableGeneralOptionsHandler: true,
	}
	go srv.Serve(FramingListener(spy))
	defer srv.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /download HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := io.Copy(io.Discard, res.Body); n != size {
		t.Fatalf("downloaded %d bytes", n)
	}
	if !spy.readFrom.Load() {
		t.Error("net/http's response.ReadFrom did not reach the connection's ReadFrom")
	}

	// 1 MiB announced, a little sent: net/http gives up on the body.
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"+strings.Repeat("y", 1000))
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("upload: %d", res.StatusCode)
	}
	// The server half-closes (FIN, here EOF) before it closes (without
	// that, the close with unread bytes resets the connection).
	_, err = io.Copy(io.Discard, br)
	t.Logf("after the refused upload: %v", err)
	if !spy.closeWrite.Load() {
		t.Error("net/http's closeWriteAndWait did not reach the connection's CloseWrite")
	}
}

// framingFault runs on every request of a watched connection: no
// allocation either.
func TestFramingFaultDoesNotAllocate(t *testing.T) {
	fc := &framingConn{}
	r, err := http.NewRequest(http.MethodGet, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	r = r.WithContext(FramingConnContext(r.Context(), fc))
	allocs := testing.AllocsPerRun(1000, func() {
		if framingFault(r) != nil {
			t.Fatal("a fault on a clean connection")
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per request, want 0", allocs)
	}
}
