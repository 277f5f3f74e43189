package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeRecorder keeps every Write call apart, to check that lines are never
// split between writes.
type writeRecorder struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *writeRecorder) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.writes, "")
}

func (w *writeRecorder) calls() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

// holdInterval is a flush interval no test outlasts: with it, lines leave
// the buffer only on Flush, Close or a full buffer, however slowly the test
// runs.
const holdInterval = time.Hour

func TestLogWriterHoldsLinesUntilFlush(t *testing.T) {
	out := &writeRecorder{}
	l := newLogWriterEvery(out, holdInterval)
	defer l.Close()
	l.Write([]byte("one\n"))
	l.Write([]byte("two\n"))
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.calls(); len(got) != 1 || got[0] != "one\ntwo\n" {
		t.Errorf("writes = %q, want one write of both lines", got)
	}
	if err := l.Flush(); err != nil || len(out.calls()) != 1 {
		t.Errorf("an empty flush wrote: %q, %v", out.calls(), err)
	}
}

// Without Flush, lines still arrive: logFlushInterval after the first line.
func TestLogWriterFlushesOnItsOwn(t *testing.T) {
	out := &writeRecorder{}
	l := newLogWriter(out)
	defer l.Close()
	for round := 0; round < 2; round++ { // the timer re-arms after a flush
		line := fmt.Sprintf("line %d\n", round)
		start := time.Now()
		l.Write([]byte(line))
		for !strings.Contains(out.String(), line) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("round %d: the line never arrived", round)
			}
			time.Sleep(time.Millisecond)
		}
		if waited := time.Since(start); waited < logFlushInterval/2 {
			t.Errorf("round %d: the line arrived after %v, before the flush interval", round, waited)
		}
	}
}

// A full buffer is written out before the line that would overflow it; a
// line longer than the buffer goes straight through. Lines are never split.
func TestLogWriterWritesWholeLinesWhenFull(t *testing.T) {
	out := &writeRecorder{}
	l := newLogWriter(out)
	var want strings.Builder
	for i := 0; i < 2000; i++ {
		line := fmt.Sprintf("%d %s\n", i, strings.Repeat("x", i%300))
		want.WriteString(line)
		l.Write([]byte(line))
	}
	huge := strings.Repeat("y", logBufferSize+10) + "\n"
	l.Write([]byte(huge))
	want.WriteString(huge)
	l.Write([]byte("after\n"))
	want.WriteString("after\n")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	calls := out.calls()
	if got := strings.Join(calls, ""); got != want.String() {
		t.Fatalf("lines lost or reordered: got %d bytes, want %d", len(got), want.Len())
	}
	for i, c := range calls {
		if !strings.HasSuffix(c, "\n") {
			t.Errorf("write %d does not end a line", i)
		}
		if len(c) > logBufferSize && c != huge {
			t.Errorf("write %d is %d bytes, more than the buffer", i, len(c))
		}
	}
	if len(calls) < want.Len()/logBufferSize {
		t.Errorf("%d writes for %d bytes: the buffer was not used", len(calls), want.Len())
	}
}

// Close writes out what is buffered; later lines go straight through.
func TestLogWriterClose(t *testing.T) {
	out := &writeRecorder{}
	l := newLogWriter(out)
	l.Write([]byte("before\n"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "before\n" {
		t.Fatalf("after Close: %q", out.String())
	}
	l.Write([]byte("late\n"))
	if out.String() != "before\nlate\n" {
		t.Errorf("a line after Close: %q", out.String())
	}
}

// Concurrent loggers lose nothing, and every line arrives whole.
func TestLogWriterConcurrent(t *testing.T) {
	out := &writeRecorder{}
	l := newLogWriter(out)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				l.Write([]byte(fmt.Sprintf("g%d line %d %s\n", g, i, strings.Repeat("z", i%97))))
				if i%100 == 0 {
					l.Flush()
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*500 {
		t.Fatalf("%d lines, want %d", len(lines), 8*500)
	}
	seen := map[string]bool{}
	for _, line := range lines {
		var g, i int
		if n, _ := fmt.Sscanf(line, "g%d line %d", &g, &i); n != 2 || strings.Count(line, "z") != i%97 {
			t.Fatalf("damaged line %q", line)
		}
		seen[fmt.Sprint(g, i)] = true
	}
	if len(seen) != 8*500 {
		t.Errorf("%d distinct lines, want %d", len(seen), 8*500)
	}
}

// serve's logger: access lines wait in the buffer, a warning brings every
// line before it out at once.
func TestServeLoggerFlushesWarnings(t *testing.T) {
	out := &writeRecorder{}
	lw := newLogWriterEvery(out, holdInterval)
	defer lw.Close()
	log := newLogger(LogConfig{Level: "info", Format: "json"}, lw)
	log.Info("request", "path", "/v1/models")
	if out.String() != "" {
		t.Errorf("an info line was written at once: %q", out.String())
	}
	log.Warn("upstream slow")
	got := out.String()
	if !strings.Contains(got, `"msg":"request"`) || !strings.Contains(got, `"msg":"upstream slow"`) ||
		strings.Index(got, "request") > strings.Index(got, "upstream slow") {
		t.Errorf("after a warning: %q", got)
	}
	var b bytes.Buffer
	newLogger(LogConfig{Level: "warn", Format: "text"}, &b).Info("dropped")
	if b.Len() != 0 {
		t.Errorf("log.level warn wrote an info line: %q", b.String())
	}
}
