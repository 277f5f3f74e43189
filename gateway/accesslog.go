package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// NewLogHandler returns the handler teamgate logs through: slog's JSON
// handler on w (slog's text handler when text is set), with two additions.
//
// The gateway's access line, one per request, is written by an encoder of
// its own, byte for byte what slog's JSON handler would write, rather than
// through a slog.Record: on a path whose other work is one proxy hop,
// slog's generic record costs several microseconds and three allocations
// per request. (Text lines, and loggers built another way, go through slog.)
//
// When w buffers (it has a Flush method, like cmd/teamgate's log writer),
// records at warn and above are flushed at once, so that a problem is in
// the log before whatever it leads to.
//
// Only opts.Level is honoured by the access lines' encoder; with AddSource
// or ReplaceAttr set, every line goes through slog.
func NewLogHandler(w io.Writer, text bool, opts *slog.HandlerOptions) slog.Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	out := &lineWriter{w: w}
	if f, ok := w.(interface{ Flush() error }); ok {
		out.flush = f.Flush
	}
	h := &logHandler{out: out, fast: !text && !opts.AddSource && opts.ReplaceAttr == nil}
	if text {
		h.inner = slog.NewTextHandler(out, opts)
	} else {
		h.inner = slog.NewJSONHandler(out, opts)
	}
	return h
}

// lineWriter serialises whole lines from slog's handler and from the access
// line encoder, so the two never interleave.
type lineWriter struct {
	mu      sync.Mutex
	w       io.Writer
	flush   func() error // nil: w does not buffer
	scratch []byte       // the access line being encoded (under mu)
	clock   secondCache  // under mu
}

// secondCache keeps the formatted date and time of one second, and its
// zone, for the access lines written within that second.
type secondCache struct {
	sec  int64
	loc  *time.Location
	text []byte // "2006-01-02T15:04:05"
	zone []byte // "Z07:00"
}

// appendTime appends t as time.RFC3339Nano formats it.
func (c *secondCache) appendTime(b []byte, t time.Time) []byte {
	if sec := t.Unix(); sec != c.sec || t.Location() != c.loc || c.text == nil {
		c.sec, c.loc = sec, t.Location()
		c.text = t.AppendFormat(c.text[:0], "2006-01-02T15:04:05")
		c.zone = t.AppendFormat(c.zone[:0], "Z07:00")
	}
	b = append(b, c.text...)
	if ns := t.Nanosecond(); ns != 0 {
		// Nine digits, trailing zeros dropped.
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, c.zone...)
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logHandler is NewLogHandler's handler; WithAttrs and WithGroup derive
// handlers that share its lineWriter.
type logHandler struct {
	inner slog.Handler
	out   *lineWriter
	// fast: access lines may bypass slog (JSON, no groups, and only string
	// attributes added by WithAttrs); pre is those attributes as JSON,
	// each with its leading comma.
	fast bool
	pre  []byte
}

func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.inner.Handle(ctx, r)
	if r.Level >= slog.LevelWarn && h.out.flush != nil {
		if ferr := h.out.flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	d := &logHandler{inner: h.inner.WithAttrs(attrs), out: h.out, fast: h.fast}
	if d.fast {
		d.pre = append([]byte(nil), h.pre...)
		for _, a := range attrs {
			if a.Value = a.Value.Resolve(); a.Value.Kind() != slog.KindString || a.Key == "" {
				d.fast, d.pre = false, nil
				break
			}
			d.pre = appendJSONField(d.pre, a.Key)
			d.pre = appendJSONString(d.pre, a.Value.String())
		}
	}
	return d
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{inner: h.inner.WithGroup(name), out: h.out}
}

// accessLine is what the access log says about one request, in the order
// the keys are written.
type accessLine struct {
	method, path string
	status       int
	duration     time.Duration
	requestID    string
	clientIP     netip.Addr // zero: unknown, logged as ""
	userID       string
	teamID       string
}

// addrString is a's text, "" for the zero Addr.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// durationMillis is the line's duration_ms: milliseconds to the microsecond.
func (a *accessLine) durationMillis() float64 {
	return float64(a.duration.Microseconds()) / 1000
}

// attrs are the line's attributes for a slog.Record.
func (a *accessLine) attrs() [8]slog.Attr {
	return [8]slog.Attr{
		slog.String("method", a.method),
		slog.String("path", a.path),
		slog.Int("status", a.status),
		slog.Float64("duration_ms", a.durationMillis()),
		slog.String("request_id", a.requestID),
		slog.String("client_ip", addrString(a.clientIP)),
		slog.String("user_id", a.userID),
		slog.String("team_id", a.teamID),
	}
}

// writeAccess writes a at info level with time t, as slog's JSON handler
// would write the record "request" with a.attrs(). The caller has checked
// h.fast and that info is enabled.
func (h *logHandler) writeAccess(t time.Time, a *accessLine) {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	b := h.out.scratch[:0]
	b = append(b, `{"time":"`...)
	b = h.out.clock.appendTime(b, t)
	b = append(b, `","level":"INFO","msg":"request"`...)
	b = append(b, h.pre...)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, a.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, a.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(a.status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, a.duration)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, a.requestID)
	b = append(b, `,"client_ip":`...)
	if a.clientIP.IsValid() && a.clientIP.Zone() == "" {
		// Digits, hex letters, '.' and ':': nothing JSON escapes.
		b = append(b, '"')
		b = a.clientIP.AppendTo(b)
		b = append(b, '"')
	} else {
		b = appendJSONString(b, addrString(a.clientIP))
	}
	b = append(b, `,"user_id":`...)
	b = appendJSONString(b, a.userID)
	b = append(b, `,"team_id":`...)
	b = appendJSONString(b, a.teamID)
	b = append(b, "}\n"...)
	_, _ = h.out.w.Write(b)
	if cap(b) <= 4<<10 { // keep the buffer unless a freak path grew it
		h.out.scratch = b
	}
}

// appendMillis appends d in milliseconds to the microsecond, as
// encoding/json (and so slog) writes the float64 durationMillis: the
// shortest decimal that reads back as that float64, which below 2^53
// microseconds (285 years) is the exact one, "1.234" or "25".
func appendMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 || us >= 1<<53 {
		return strconv.AppendFloat(b, float64(us)/1000, 'f', -1, 64)
	}
	b = strconv.AppendInt(b, us/1000, 10)
	if frac := us % 1000; frac != 0 {
		digits := [4]byte{'.', byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
		n := 4
		for digits[n-1] == '0' {
			n--
		}
		b = append(b, digits[:n]...)
	}
	return b
}

// appendJSONField appends `,"key":`.
func appendJSONField(b []byte, key string) []byte {
	b = append(b, ',')
	b = appendJSONString(b, key)
	return append(b, ':')
}

// jsonPlain marks the bytes a JSON string holds as they are: printable
// ASCII but the quote and the backslash.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string exactly as slog's JSON
// handler escapes it (encoding/json without HTML escaping): quote,
// backslash and control characters escaped, invalid UTF-8 as U+FFFD, and
// U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

var _ slog.Handler = (*logHandler)(nil)
