package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedOutbox is an OutboxAdmin over a fixed list that records its calls.
type scriptedOutbox struct {
	mu      sync.Mutex
	ops     []AdminOutboxOp
	fail    error
	gotList []string // "status/limit" of each ListOutbox call
}

func (f *scriptedOutbox) ListOutbox(_ context.Context, status string, limit int) ([]AdminOutboxOp, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gotList = append(f.gotList, status+"/"+strconv.Itoa(limit))
	if f.fail != nil {
		return nil, f.fail
	}
	var out []AdminOutboxOp
	for _, op := range f.ops {
		if status == "" || op.Status == status {
			out = append(out, op)
		}
	}
	return out, nil
}

func (f *scriptedOutbox) RetryOutbox(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, op := range f.ops {
		if op.ID != id {
			continue
		}
		if op.Status != "parked" {
			return ErrNotParked
		}
		f.ops[i].Status = "pending"
		return nil
	}
	return ErrNotFound
}

func TestAdminOutbox(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ob := &scriptedOutbox{ops: []AdminOutboxOp{
		{ID: 2, Kind: "team_new", TeamID: "t1", Status: "parked", Attempts: 1, LastError: "litellm /team/new: HTTP 422", Body: []byte(`{"team_id":"t1"}`), NextAttemptAt: at, CreatedAt: at, UpdatedAt: at},
		{ID: 1, Kind: "user_new", UserID: "u1", Status: "done", NextAttemptAt: at, CreatedAt: at, UpdatedAt: at},
	}}
	h := newHarness(t, func(s *setup) { s.deps.Outbox = ob })
	auth := map[string]string{"Authorization": "Bearer " + testAdminToken}
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantJSON   []string
	}{
		{"list all", http.MethodGet, "/teamgate/api/outbox", http.StatusOK, []string{`"id":2`, `"kind":"team_new"`, `"status":"parked"`,
			`"last_error":"litellm /team/new: HTTP 422"`, `"body":{"team_id":"t1"}`, `"id":1`, `"body":{}`}},
		{"list parked", http.MethodGet, "/teamgate/api/outbox?status=parked&limit=5", http.StatusOK, []string{`[{"id":2,`}},
		{"list pending: empty array", http.MethodGet, "/teamgate/api/outbox?status=pending", http.StatusOK, []string{`[]`}},
		{"bad status", http.MethodGet, "/teamgate/api/outbox?status=failed", http.StatusBadRequest, []string{`"type":"bad_request"`}},
		{"bad limit", http.MethodGet, "/teamgate/api/outbox?limit=1001", http.StatusBadRequest, []string{`"type":"bad_request"`}},
		{"retry a done op", http.MethodPost, "/teamgate/api/outbox/1/retry", http.StatusConflict, []string{`"type":"conflict"`}},
		{"retry an unknown op", http.MethodPost, "/teamgate/api/outbox/99/retry", http.StatusNotFound, []string{`"type":"not_found"`}},
		{"retry a bad id", http.MethodPost, "/teamgate/api/outbox/x/retry", http.StatusBadRequest, nil},
		{"retry a parked op", http.MethodPost, "/teamgate/api/outbox/2/retry", http.StatusOK, []string{`{"id":2,"status":"pending"}`}},
		{"retry needs POST", http.MethodGet, "/teamgate/api/outbox/2/retry", http.StatusMethodNotAllowed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := h.do(apiClient(), tt.method, tt.path, auth)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.wantStatus, body)
			}
			for _, w := range tt.wantJSON {
				if !strings.Contains(body, w) {
					t.Errorf("body %s lacks %s", body, w)
				}
			}
		})
	}
	if got := strings.Join(ob.gotList, ","); got != "/100,parked/5,pending/100" {
		t.Errorf("ListOutbox calls = %s", got)
	}
	if res, _ := h.do(apiClient(), http.MethodPost, "/teamgate/api/outbox/2/retry", nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("retry without the admin token: %d, want 401", res.StatusCode)
	}

	ob.fail = errors.New("database down")
	if res, body := h.get(apiClient(), "/teamgate/api/outbox", auth); res.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "database down") {
		t.Errorf("store failure: %d %s", res.StatusCode, body)
	}
}

func TestAdminOutboxWithoutProvisioning(t *testing.T) {
	h := newHarness(t)
	auth := map[string]string{"Authorization": "Bearer " + testAdminToken}
	for _, m := range []string{http.MethodGet + " /teamgate/api/outbox", http.MethodPost + " /teamgate/api/outbox/1/retry"} {
		method, path, _ := strings.Cut(m, " ")
		res, body := h.do(apiClient(), method, path, auth)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "provisioning is off") {
			t.Errorf("%s: %d %s", m, res.StatusCode, body)
		}
	}
}
