package teamsync_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
	"github.com/teamgate/teamgate/sync/teamsync"
)

func (h *harness) provision(p teamsync.Provisioning) {
	h.recon = teamsync.New(h.graph, h.store, defaults, teamsync.WithLogger(slog.New(slog.DiscardHandler)), teamsync.WithProvisioning(p))
}

// outbox lists the pending operations as kind:team:user, oldest first.
func outbox(t *testing.T, st store.Store) ([]string, []int64) {
	t.Helper()
	ops, err := st.ListOutbox(context.Background(), store.OutboxFilter{Status: store.OutboxPending, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ops)
	var keys []string
	var ids []int64
	for _, o := range ops {
		keys = append(keys, o.Kind+":"+o.TeamID+":"+o.UserID)
		ids = append(ids, o.ID)
	}
	return keys, ids
}

// A reconcile enqueues exactly what it changed, in the same transaction, and
// reports the ids; a reconcile that changes nothing enqueues nothing.
func TestReconcileEnqueuesProvisioning(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
		h.provision(teamsync.Provisioning{Enabled: true, BlockUnassignedTeams: true})

		res := h.reconcile(t, "alice")
		keys, ids := outbox(t, st)
		want := []string{"user_new::alice", "team_new:eng:", "team_new:ops:", "member_add:eng:alice", "member_add:ops:alice"}
		equal(t, "outbox after alice's first sign-in", keys, want)
		if !slices.Equal(res.OutboxIDs, ids) {
			t.Errorf("Result.OutboxIDs = %v, want %v", res.OutboxIDs, ids)
		}
		ops, _ := st.OutboxOps(context.Background(), ids[:1])
		var body map[string]any
		if err := json.Unmarshal(ops[0].Body, &body); err != nil || body["user_email"] != "alice@example.com" || body["user_role"] != "internal_user" {
			t.Errorf("user_new body = %s (%v)", ops[0].Body, err)
		}

		if res := h.reconcile(t, "alice"); len(res.OutboxIDs) != 0 {
			t.Errorf("an unchanged reconcile enqueued %v", res.OutboxIDs)
		}

		// Rename, leave a group, unassign one, re-assign it.
		h.tenant.RenameGroup("eng", "Engineering (new)")
		h.tenant.RemoveMember("ops", "alice")
		res = h.reconcile(t, "alice")
		keys, _ = outbox(t, st)
		equal(t, "after rename and leave", keys[len(want):], []string{"team_update:eng:", "member_delete:ops:alice"})
		if len(res.OutboxIDs) != 2 {
			t.Errorf("OutboxIDs = %v, want 2 ids", res.OutboxIDs)
		}
		h.tenant.UnassignFromApp("ops")
		h.reconcile(t, "bob")
		h.tenant.AssignToApp("ops")
		h.reconcile(t, "bob")
		keys, _ = outbox(t, st)
		equal(t, "unassign, re-assign", keys[len(want)+2:], []string{"user_new::bob", "member_add:eng:bob", "team_block:ops:", "team_unblock:ops:"})
	})
}

func TestReconcileWithoutProvisioningEnqueuesNothing(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		h := newHarness(t, st, setup{dir: seedDir(), appScoped: true})
		if res := h.reconcile(t, "alice"); len(res.OutboxIDs) != 0 {
			t.Errorf("OutboxIDs = %v", res.OutboxIDs)
		}
		if keys, _ := outbox(t, st); len(keys) != 0 {
			t.Errorf("outbox = %v", keys)
		}
	})
}
