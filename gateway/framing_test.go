package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// framingBlock is what the scanner saw of one header block.
type framingBlock struct {
	end     int  // offset just past the block's blank line
	fault   bool // faulty framing: both framing headers, or Transfer-Encoding on HTTP/1.0
	stopped bool // scanning stopped with it
}

// scanBytewise feeds data one byte at a time and records each block.
func scanBytewise(data []byte) (blocks []framingBlock, done bool) {
	var s framingScanner
	for i := range data {
		if s.done {
			break
		}
		n := s.blocks
		fault := s.scan(data[i : i+1])
		if s.blocks != n {
			blocks = append(blocks, framingBlock{end: i + 1, fault: fault, stopped: s.done})
		}
	}
	return blocks, s.done
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
	// net/http drops up to 4 CR/LF bytes after a POST (review finding 4).
	"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\n\r\n\rPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
	"post /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
	// HTTP/1.0 with Transfer-Encoding (review finding 7), behind a kept-alive
	// HTTP/1.0 request.
	"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nxPOST /b HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: identity\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
	// "OPTIONS *", which net/http answers itself unless told not to.
	"OPTIONS * HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}

func TestFramingScannerAgreesWithNetHTTP(t *testing.T) {
	for _, s := range framingSeeds {
		for _, chunk := range []int{0, 1, 7} {
			checkFraming(t, []byte(s), chunk)
		}
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
		{framingSeeds[8], true}, // the HTTP/1.0 one with Transfer-Encoding
		{framingSeeds[11], true},
		{framingSeeds[1], false},
		{framingSeeds[6], false},
		{framingSeeds[12], false},
		{framingSeeds[15], true},
		{framingSeeds[16], true},
		{framingSeeds[17], false},
		{framingSeeds[20], true},
		{framingSeeds[21], true},
	} {
		var s framingScanner
		if got := s.scan([]byte(tc.raw)); got != tc.conflict {
			t.Errorf("conflict %v, want %v: %q", got, tc.conflict, tc.raw)
		}
	}
}

// FuzzFramingScanner checks the scanner against net/http's connection
// loop: for every request net/http would read from the stream, the scanner
// finds the same end of the header block (so the same body length before
// it), and flags exactly the chunked requests whose raw header also had a
// Content-Length and the HTTP/1.0 ones with a Transfer-Encoding; and a real
// http.Server with FramingListener, reading the stream chunk bytes at a
// time, serves those requests and refuses exactly the faulty ones.
func FuzzFramingScanner(f *testing.F) {
	for i, s := range framingSeeds {
		f.Add([]byte(s), uint8(i%3*5))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		checkFraming(t, data, int(chunk%32))
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
			if framingFault(r) != nil {
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			io.Copy(io.Discard, r.Body)
		}),
		ConnContext:                  FramingConnContext,
		DisableGeneralOptionsHandler: true,
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
