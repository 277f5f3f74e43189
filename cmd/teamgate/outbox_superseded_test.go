package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/store"
)

// A parked member_add retried after the user left the group (a later
// member_delete of the same team and user was delivered) must not re-add
// the user: the admin API answers 409 "superseded by operation N" and lists
// the operation as superseded from then on.
func TestAdminOutboxRetryRefusesASupersededOp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		p := startProvisionE2E(t, st, nil)
		p.app.prov.worker.Concurrency = 1
		p.litellm.FailNext("/team/member_add", 1, http.StatusBadRequest, "")
		p.signIn("alice-oid")
		p.drain()

		var add gateway.AdminOutboxOp
		for _, op := range p.outbox("parked") {
			if op.Kind == "member_add" && op.UserID == "alice-oid" {
				add = op
			}
		}
		if add.ID == 0 {
			t.Fatalf("no parked member_add: %+v", p.outbox(""))
		}

		// Alice leaves that group; her next sign-in removes the membership.
		p.tenant.RemoveMember(add.TeamID, "alice-oid")
		p.signIn("alice-oid")
		p.drain()
		var del gateway.AdminOutboxOp
		for _, op := range p.outbox("done") {
			if op.Kind == "member_delete" && op.TeamID == add.TeamID && op.UserID == "alice-oid" {
				del = op
			}
		}
		if del.ID <= add.ID {
			t.Fatalf("no delivered member_delete after op %d: %+v", add.ID, p.outbox(""))
		}

		code, body := p.adminPost(fmt.Sprintf("/teamgate/api/outbox/%d/retry", add.ID))
		if code != http.StatusConflict || !strings.Contains(body, fmt.Sprintf(`"superseded by operation %d`, del.ID)) || !strings.Contains(body, `"type":"conflict"`) {
			t.Fatalf("retry of the superseded op: %d %s; want 409 superseded by operation %d", code, body, del.ID)
		}
		p.drain()
		if ms := members(p.team(add.TeamID)); slices.Contains(ms, "alice-oid:user") {
			t.Errorf("alice was re-added to %s: %v", add.TeamID, ms)
		}
		sup := p.outbox("superseded")
		if len(sup) != 1 || sup[0].ID != add.ID || sup[0].SupersededBy != del.ID || sup[0].Status != "superseded" {
			t.Errorf("GET outbox?status=superseded = %+v", sup)
		}
		if ops := p.outbox("parked"); len(ops) != 0 {
			t.Errorf("still parked: %+v", ops)
		}
		if code, body := p.adminPost(fmt.Sprintf("/teamgate/api/outbox/%d/retry", add.ID)); code != http.StatusConflict || !strings.Contains(body, "only parked") {
			t.Errorf("second retry: %d %s", code, body)
		}
	})
}
