package litellm

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/litellmfake"
)

// testMasterKey must never show up in an error or a log line.
const testMasterKey = "sk-master-0123456789abcdef"

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fakeEnv struct {
	fake   *litellmfake.Server
	srv    *httptest.Server
	client *Client
	logs   *syncBuffer
}

// newFakeEnv starts the fake LiteLLM and a client for it. The client logs
// at debug level into env.logs, which is checked for the master key at the
// end of the test.
func newFakeEnv(t *testing.T, key string, opts ...Option) *fakeEnv {
	t.Helper()
	fake := litellmfake.New(testMasterKey)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	base := []Option{WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	c, err := New(srv.URL, key, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { assertNoSecret(t, "log", logs.String(), key) })
	return &fakeEnv{fake: fake, srv: srv, client: c, logs: logs}
}

// assertNoSecret fails when text contains the key (or a long piece of it).
func assertNoSecret(t *testing.T, what, text, key string) {
	t.Helper()
	if strings.Contains(text, key) {
		t.Errorf("%s contains the master key: %s", what, text)
	}
	if len(key) > 12 && strings.Contains(text, key[3:12]) {
		t.Errorf("%s contains part of the master key: %s", what, text)
	}
}

// fixedClock returns a clock stuck at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// paths lists the paths of the fake's recorded requests.
func paths(reqs []litellmfake.Request) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Path
	}
	return out
}

func newBenchServer(b *testing.B, h http.Handler) string {
	b.Helper()
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}
