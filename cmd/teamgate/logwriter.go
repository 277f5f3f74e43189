package main

import (
	"io"
	"sync"
	"time"
)

// Log lines are gathered for at most logFlushInterval, or until
// logBufferSize bytes are waiting, before they are written out.
const (
	logFlushInterval = 100 * time.Millisecond
	logBufferSize    = 32 << 10
)

// logWriter buffers `teamgate serve`'s log on its way to stderr. Every
// proxied request logs a line; written one by one, each would cost a
// write(2) of its own, a few percent of what the whole proxied request
// costs. Buffered lines are written out when logBufferSize bytes have
// gathered, logFlushInterval after the first line of a batch, on Flush
// (gateway.NewLogHandler flushes after every warning and error) and on
// Close. Lines are only ever written whole. What a SIGKILL or a fatal
// runtime error cuts short is the last logFlushInterval of access lines.
type logWriter struct {
	mu       sync.Mutex
	w        io.Writer
	buf      []byte
	interval time.Duration // logFlushInterval but in tests
	timer    *time.Timer   // runs Flush; armed while buf holds lines
	armed    bool
}

func newLogWriter(w io.Writer) *logWriter { return newLogWriterEvery(w, logFlushInterval) }

// newLogWriterEvery is newLogWriter with another flush interval than
// logFlushInterval: tests that must see lines still buffered use a long one.
func newLogWriterEvery(w io.Writer, interval time.Duration) *logWriter {
	l := &logWriter{w: w, buf: make([]byte, 0, logBufferSize), interval: interval}
	l.timer = time.AfterFunc(time.Hour, func() { _ = l.Flush() })
	l.timer.Stop()
	return l
}

// Write buffers p, one or more whole lines (slog writes one record per
// call). A write error of the underlying writer is returned by the Write
// or Flush that meets it; the lines of that batch are dropped.
func (l *logWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf)+len(p) > cap(l.buf) {
		if err := l.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(l.buf) {
			return l.w.Write(p)
		}
	}
	l.buf = append(l.buf, p...)
	if !l.armed {
		l.armed = true
		l.timer.Reset(l.interval)
	}
	return len(p), nil
}

// Flush writes out the buffered lines now.
func (l *logWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

func (l *logWriter) flushLocked() error {
	if l.armed {
		l.timer.Stop()
		l.armed = false
	}
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.w.Write(l.buf)
	l.buf = l.buf[:0]
	return err
}

// Close flushes; later writes go straight through, so that nothing logged
// after shutdown is lost either.
func (l *logWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.flushLocked()
	l.buf = l.buf[:0:0]
	return err
}
