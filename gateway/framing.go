package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// Requests carrying both Content-Length and Transfer-Encoding are refused
// with a 400, as RFC 9112 §6.3 advises ("ought to be handled as an error"):
// a proxy in front that framed such a request by its length would read the
// connection differently from teamgate (request smuggling). So are HTTP/1.0
// requests carrying Transfer-Encoding, whose framing RFC 9112 §6.1 calls
// faulty (net/http ignores the header there and frames by Content-Length; a
// proxy in front might not).
//
// net/http accepts such a request (as chunked, or by its length on
// HTTP/1.0) and deletes the header it ignored before any handler runs, so
// the handler cannot tell. FramingListener therefore watches each
// connection's bytes below net/http: a small state machine (framingScanner)
// follows the HTTP/1.x header blocks as net/http's connection loop reads
// them (including the up to 4 CR/LF bytes it drops after a POST), skips the
// bodies framed by Content-Length, and records the first faulty block's
// position on the connection. ServeHTTP counts the requests of the
// connection (framingFault), answers the faulty one with 400 and closes the
// connection. Scanning stops at that block, and at the first block with
// Transfer-Encoding, which is the last request net/http serves on that
// connection (chunked requests close it, see ServeHTTP; other codings are
// refused with 501). It also stops for good at anything net/http itself
// refuses (which closes the connection) and at an HTTP/2 preface. The
// http.Server must set DisableGeneralOptionsHandler, so that every request
// reaches ServeHTTP (net/http answers "OPTIONS *" itself otherwise, without
// closing the connection after a chunked one).
//
// The cost is a pass over the header bytes as they are read, with no
// allocation per request: one small object per connection.
//
// It needs the plaintext bytes: with server.tls_cert_file set, net/http
// terminates TLS itself (and negotiates HTTP/2), so the listener is not
// installed there, and such requests keep the older protection only (the
// chunked body wins and the connection is closed after the request; an
// HTTP/1.0 request is framed by its Content-Length).

// FramingListener wraps a plaintext listener so that ServeHTTP can refuse
// requests with conflicting framing; the http.Server must also set
// ConnContext to FramingConnContext and DisableGeneralOptionsHandler.
func FramingListener(ln net.Listener) net.Listener { return framingListener{ln} }

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return &framingConn{Conn: c}, nil
}

// FramingConnContext is the http.Server's ConnContext for FramingListener.
func FramingConnContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc)
	}
	return ctx
}

type framingKey struct{}

var (
	errConflictingFraming = errors.New("request with both Content-Length and Transfer-Encoding")
	errTransferEncoding10 = errors.New("HTTP/1.0 request with Transfer-Encoding")
)

// framingConn scans what net/http reads. net/http never reads a connection
// from two goroutines at once, so the scanner needs no lock; the handler
// only reads fault.
type framingConn struct {
	net.Conn
	// fault is the faulty block's number on the connection (from 1)
	// shifted left by 8, ORed with its kind (fsFault*); 0 if none.
	fault atomic.Uint64
	// requests counts the requests ServeHTTP saw on the connection.
	requests atomic.Uint64
	s        framingScanner
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.s.done {
		if c.s.scan(p[:n]) {
			c.fault.Store(uint64(c.s.blocks)<<8 | uint64(c.s.fault))
		}
	}
	return n, err
}

// net/http looks for these on the connection (server.go: closeWriter, so
// that a connection closed with request bytes unread half-closes first;
// io.ReaderFrom, for sendfile/splice); the wrapper must not hide them.

// CloseWrite half-closes the connection if the wrapped one can.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// ReadFrom lets the wrapped connection copy from r (sendfile, splice).
func (c *framingConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// framingFault reports why the request's header block had faulty framing
// (errConflictingFraming, errTransferEncoding10), or nil. It must be called
// once for every request, in order: it numbers them to tell which request
// the flagged block was (net/http may have read a later request's header
// while an earlier one is served).
func framingFault(r *http.Request) error {
	fc, ok := r.Context().Value(framingKey{}).(*framingConn)
	if !ok {
		return nil
	}
	n := fc.requests.Add(1)
	f := fc.fault.Load()
	if f == 0 || f>>8 > n && len(r.TransferEncoding) == 0 {
		// None, or a later request's. (A chunked request is the last
		// one scanned: a flag is its own, or an earlier request's that
		// was miscounted; either way the connection ends here.)
		return nil
	}
	if f&0xff == fsFaultTE10 {
		return errTransferEncoding10
	}
	return errConflictingFraming
}

// framingScanner follows a stream of HTTP/1.x requests as net/http's
// connection loop (conn.readRequest, net/textproto and net/http/transfer.go)
// reads them. Where net/http refuses the input it closes the connection, so
// the scanner may then stop (done) without agreeing on anything further;
// where net/http accepts a request, the scanner must find the same end of
// its header block, the same body length and the same two headers
// (FuzzFramingScanner checks this, through a real http.Server).
type framingScanner struct {
	state uint8
	done  bool
	fault uint8 // why scan returned true: fsFaultCLTE, fsFaultTE10
	// blocks counts the header blocks that ended: the requests net/http
	// read.
	blocks int

	// After a request whose method is exactly POST, net/http drops up to
	// 4 CR or LF bytes before the next request line (conn.readRequest,
	// "tolerance for old buggy clients").
	afterPOST bool
	lead      uint8 // CR/LF bytes that may still be dropped
	meth      uint8 // bytes of the method matching "POST" so far; methNotPOST once not

	body int64 // body bytes still to skip

	// Request line: the spaces seen and the bytes after the second one
	// (the version), of which the first 9 are kept.
	spaces uint8
	verN   int
	ver    [9]byte
	http10 bool // HTTP/1.0: net/http ignores Transfer-Encoding

	// Header block.
	firstLine   bool // no header line yet
	nameN       int  // bytes of the current header name
	name        [17]byte
	cur         uint8 // the header the current line (or its continuation) belongs to
	sawCL       bool
	sawTE       bool
	clState     uint8 // value of the current Content-Length: clLead, clDigits, clTrail, clBad
	clVal       int64
	clLen       int
	firstCLVal  int64
	firstCLLen  int
	firstCLSeen bool
}

const (
	fsReqLine   = iota // in the request line
	fsReqLineCR        // after a CR in the request line
	fsLineStart        // at the start of a header line
	fsLineCR           // after a CR at the start of a header line
	fsName             // in a header name
	fsValue            // in a header value
	fsValueCR          // after a CR in a header value
	fsBody             // skipping a Content-Length body
)

const methNotPOST = 0xff

const (
	fsFaultCLTE = 1 + iota // Content-Length with Transfer-Encoding (chunked)
	fsFaultTE10            // Transfer-Encoding on HTTP/1.0
)

const (
	hdrOther = iota
	hdrCL
	hdrTE
)

const (
	clLead = iota
	clDigits
	clTrail
	clBad
)

// scan consumes p and reports whether a header block with both framing
// headers ended in it (scanning then stops).
func (s *framingScanner) scan(p []byte) bool {
	for i := 0; i < len(p) && !s.done; i++ {
		c := p[i]
		switch s.state {
		case fsBody:
			n := min(s.body, int64(len(p)-i))
			s.body -= n
			i += int(n) - 1
			if s.body == 0 {
				s.startRequest()
			}
		case fsReqLine:
			if s.lead > 0 {
				if c == '\r' || c == '\n' {
					s.lead--
					continue
				}
				s.lead = 0
			}
			switch c {
			case '\n':
				s.endRequestLine()
			case '\r':
				s.state = fsReqLineCR
			case ' ':
				if s.spaces < 2 {
					s.spaces++
					continue
				}
				s.verByte(c)
			default:
				switch s.spaces {
				case 0:
					if s.meth < 4 && c == "POST"[s.meth] {
						s.meth++
					} else {
						s.meth = methNotPOST
					}
				case 2:
					s.verByte(c)
				}
			}
		case fsReqLineCR:
			if c != '\n' {
				s.done = true // a CR inside the request line: refused
				break
			}
			s.endRequestLine()
		case fsLineStart:
			switch c {
			case '\n':
				if s.endBlock() {
					return true
				}
			case '\r':
				s.state = fsLineCR
			case ' ', '\t':
				if s.firstLine {
					s.done = true // leading whitespace on the first header line: refused
					break
				}
				// A continuation of the previous line: net/http joins it
				// with one space.
				s.valueByte(' ')
				s.state = fsValue
			default:
				if !s.endHeader() {
					break
				}
				s.firstLine = false
				s.cur, s.nameN = hdrOther, 0
				s.state = fsName
				s.nameByte(c)
			}
		case fsLineCR:
			if c != '\n' {
				s.done = true // a line starting with a CR: refused
				break
			}
			if s.endBlock() {
				return true
			}
		case fsName:
			switch c {
			case ':':
				s.endName()
				s.state = fsValue
			case '\n', '\r':
				s.done = true // a header line without a colon: refused
			default:
				s.nameByte(c)
			}
		case fsValue:
			if s.cur != hdrCL {
				// Only the end of the line matters (a CR inside the
				// value is refused by net/http, which closes the
				// connection): jump to it.
				j := bytes.IndexByte(p[i:], '\n')
				if j < 0 {
					i = len(p)
					break
				}
				i += j
				s.state = fsLineStart
				break
			}
			switch c {
			case '\n':
				s.state = fsLineStart
			case '\r':
				s.state = fsValueCR
			default:
				s.valueByte(c)
			}
		case fsValueCR:
			if c != '\n' {
				s.done = true // a CR inside a value: refused
				break
			}
			s.state = fsLineStart
		}
	}
	return false
}

func (s *framingScanner) startRequest() {
	s.state, s.spaces, s.verN, s.meth, s.lead = fsReqLine, 0, 0, 0, 0
	if s.afterPOST {
		s.lead = 4
	}
}

func (s *framingScanner) verByte(c byte) {
	if s.verN < len(s.ver) {
		s.ver[s.verN] = c
	}
	s.verN++
}

// endRequestLine checks the version as net/http's ParseHTTPVersion does
// and starts the header block. Anything but HTTP/1.x ends the scan: net/http
// refuses it, or it is an HTTP/2 preface ("PRI * HTTP/2.0").
func (s *framingScanner) endRequestLine() {
	v := s.ver
	if s.spaces != 2 || s.verN != 8 || string(v[:5]) != "HTTP/" || v[5] != '1' || v[6] != '.' || v[7] < '0' || v[7] > '9' {
		s.done = true
		return
	}
	s.http10 = v[7] == '0'
	s.state, s.firstLine, s.cur = fsLineStart, true, hdrOther
	s.sawCL, s.sawTE, s.firstCLSeen = false, false, false
}

// nameByte keeps the header name lower-cased, as far as the two names
// that matter go.
func (s *framingScanner) nameByte(c byte) {
	if s.nameN < len(s.name) {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		s.name[s.nameN] = c
	}
	s.nameN++
}

func (s *framingScanner) endName() {
	n := s.name[:min(s.nameN, len(s.name))]
	switch {
	case s.nameN == len("content-length") && string(n) == "content-length":
		s.cur, s.sawCL = hdrCL, true
		s.clState, s.clVal, s.clLen = clLead, 0, 0
	case s.nameN == len("transfer-encoding") && string(n) == "transfer-encoding":
		s.cur, s.sawTE = hdrTE, true
	}
}

// valueByte follows a Content-Length value: optional whitespace, digits,
// optional whitespace (continuation lines join with a space).
func (s *framingScanner) valueByte(c byte) {
	if s.cur != hdrCL {
		return
	}
	switch {
	case c == ' ' || c == '\t':
		if s.clState == clDigits {
			s.clState = clTrail
		}
	case '0' <= c && c <= '9' && (s.clState == clLead || s.clState == clDigits):
		d := int64(c - '0')
		if s.clVal > (1<<63-1-d)/10 {
			s.clState = clBad // more than net/http's 63 bits
			return
		}
		s.clVal = s.clVal*10 + d
		s.clLen++
		s.clState = clDigits
	default:
		s.clState = clBad
	}
}

// endHeader finishes the header whose lines just ended. A Content-Length
// that net/http refuses (empty, not a number, different from an earlier
// one) ends the scan; it reports whether scanning goes on.
func (s *framingScanner) endHeader() bool {
	if s.cur != hdrCL {
		return true
	}
	s.cur = hdrOther
	if s.clState != clDigits && s.clState != clTrail {
		s.done = true
		return false
	}
	if s.firstCLSeen && (s.clVal != s.firstCLVal || s.clLen != s.firstCLLen) {
		s.done = true
		return false
	}
	s.firstCLSeen, s.firstCLVal, s.firstCLLen = true, s.clVal, s.clLen
	return true
}

// endBlock ends a header block; it reports faulty framing (s.fault).
func (s *framingScanner) endBlock() bool {
	if !s.endHeader() {
		return false
	}
	s.blocks++
	if s.sawTE {
		s.done = true
		switch {
		case s.http10:
			// net/http ignores the header and frames by
			// Content-Length; the request is refused (the last one).
			s.fault = fsFaultTE10
		case s.sawCL:
			s.fault = fsFaultCLTE
		default:
			// Chunked (the last request of the connection) or refused.
			return false
		}
		return true
	}
	s.afterPOST = s.meth == 4
	s.body = 0
	if s.firstCLSeen {
		s.body = s.firstCLVal
	}
	if s.body > 0 {
		s.state = fsBody
	} else {
		s.startRequest()
	}
	return false
}
