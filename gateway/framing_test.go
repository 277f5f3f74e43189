package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// framingBlock is what the scanner saw of one header block.
type framingBlock struct {
	end      int  // offset just past the block's blank line
	conflict bool // the block carried both framing headers
	stopped  bool // scanning stopped with it
}

// scanBytewise feeds data one byte at a time and records each block.
func scanBytewise(data []byte) (blocks []framingBlock, done bool) {
	var s framingScanner
	for i := range data {
		if s.done {
			break
		}
		n := s.blocks
		conflict := s.scan(data[i : i+1])
		if s.blocks != n {
			blocks = append(blocks, framingBlock{end: i + 1, conflict: conflict, stopped: s.done})
		}
	}
	return blocks, s.done
}

// httpRequests parses data as net/http's server reads a connection and
// returns, for every request it accepts, where its header block ended,
// whether it had both framing headers in its raw header and whether it is
// chunked (the last request the server reads then).
func httpRequests(data []byte) []framingBlock {
	var out []framingBlock
	r := bytes.NewReader(data)
	br := bufio.NewReader(r)
	pos := func() int { return len(data) - r.Len() - br.Buffered() }
	for {
		start := pos()
		req, err := http.ReadRequest(br)
		if err != nil || req.ProtoMajor != 1 {
			return out // refused: the server closes the connection
		}
		// The raw header, before net/http dropped Content-Length.
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(data[start:])))
		tp.ReadLine()
		raw, err := tp.ReadMIMEHeader()
		if err != nil {
			panic("net/http accepted a header textproto refuses: " + err.Error())
		}
		_, cl := raw["Content-Length"]
		_, te := raw["Transfer-Encoding"]
		chunked := len(req.TransferEncoding) > 0
		out = append(out, framingBlock{end: pos(), conflict: chunked && cl && te, stopped: chunked})
		if chunked {
			return out
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return out
		}
	}
}

// checkAgainstNetHTTP compares the scanner with net/http on one stream.
func checkAgainstNetHTTP(t *testing.T, data []byte) {
	t.Helper()
	want := httpRequests(data)
	got, _ := scanBytewise(data)
	for i, w := range want {
		if i >= len(got) {
			t.Fatalf("net/http read request %d (%+v) but the scanner stopped after %d blocks: %q", i, w, len(got), data)
		}
		if got[i].end != w.end || got[i].conflict != w.conflict || w.stopped && !got[i].stopped {
			t.Fatalf("request %d: scanner %+v, net/http %+v: %q", i, got[i], w, data)
		}
	}
	// Whole reads and byte-sized ones agree.
	var s framingScanner
	whole := s.scan(data)
	if len(got) > 0 && got[len(got)-1].conflict != whole && s.blocks == len(got) {
		t.Fatalf("scanning at once: conflict %v, byte by byte %v: %q", whole, got[len(got)-1].conflict, data)
	}
	if s.blocks != len(got) {
		t.Fatalf("scanning at once: %d blocks, byte by byte %d: %q", s.blocks, len(got), data)
	}
}

var framingSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\ncontent-LENGTH: 3\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST / HTTP/1.1\nHost: x\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\n\n",
	"POST / HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhelloPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 05\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 36\r\n\r\nContent-Length: 1\r\nTransfer-EncodingPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n",
}

func TestFramingScannerAgreesWithNetHTTP(t *testing.T) {
	for _, s := range framingSeeds {
		checkAgainstNetHTTP(t, []byte(s))
	}
	// And the cases that matter, spelled out.
	for _, tc := range []struct {
		raw      string
		conflict bool
	}{
		{framingSeeds[2], true},
		{framingSeeds[3], true},
		{framingSeeds[4], true},
		{framingSeeds[5], true},
		{framingSeeds[7], true},
		{framingSeeds[8], true}, // the HTTP/1.1 request after the HTTP/1.0 one
		{framingSeeds[11], true},
		{framingSeeds[1], false},
		{framingSeeds[6], false},
		{framingSeeds[12], false},
	} {
		var s framingScanner
		if got := s.scan([]byte(tc.raw)); got != tc.conflict {
			t.Errorf("conflict %v, want %v: %q", got, tc.conflict, tc.raw)
		}
	}
}

// FuzzFramingScanner checks the scanner against net/http's own parser: for
// every request net/http would serve from the stream, the scanner finds the
// same end of the header block (so the same body length before it), and
// flags exactly the chunked requests whose raw header also had a
// Content-Length.
func FuzzFramingScanner(f *testing.F) {
	for _, s := range framingSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstNetHTTP(t, data)
	})
}

// Through a real http.Server: a conflicting request is refused with 400
// and closes the connection; chunked and Content-Length requests alone are
// served as before.
func TestFramingListenerRefusesConflictingRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TransferEncoding) > 0 && conflictingFraming(r.Context()) {
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			io.Copy(io.Discard, r.Body)
		}),
		ConnContext: FramingConnContext,
	}
	go srv.Serve(FramingListener(ln))
	defer srv.Close()
	send := func(raw string) (int, bool) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, raw)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		return res.StatusCode, res.Close
	}
	for _, tc := range []struct {
		raw  string
		want int
	}{
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 200},
	} {
		status, closed := send(tc.raw)
		if status != tc.want || tc.want == 400 && !closed {
			t.Errorf("%q: %d closed=%v, want %d", strings.SplitN(tc.raw, "\r\n\r\n", 2)[0], status, closed, tc.want)
		}
	}
}

// The scanner is on every plaintext connection: it must not allocate.
func TestFramingScannerDoesNotAllocate(t *testing.T) {
	req := []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: teamgate.example.com\r\nUser-Agent: OpenAI/Python 1.0\r\n" +
		"Authorization: Bearer sk-0123456789\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"model\":\"gpt-4\"}")
	var s framingScanner
	allocs := testing.AllocsPerRun(1000, func() {
		if s.scan(req) || s.done {
			t.Fatal("a plain request stopped the scanner")
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per request scanned, want 0", allocs)
	}
}

func BenchmarkFramingScanner(b *testing.B) {
	req := []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: teamgate.example.com\r\nUser-Agent: OpenAI/Python 1.0\r\n" +
		"Authorization: Bearer sk-0123456789\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"model\":\"gpt-4\"}")
	var s framingScanner
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		s.scan(req)
	}
}
