package gateway

import (
	"context"
	"crypto/rand"
	"os"
	"time"
)

// forgetSigningReplicasAfter: a starting replica deletes the reports of
// replicas not seen for this long (a live replica reports at least every
// assertion.key_refresh, which is at most an hour).
const forgetSigningReplicasAfter = 24 * time.Hour

// newReplicaID names this process in the replicas' reports of the key they
// sign with: the host name (a pod's name, so that an operator knows whose
// logs to read) and random characters, since a restarted process is
// another replica.
func newReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return host + "/" + rand.Text()[:10]
}

// reportSigningKey records the kid this replica signs with now, so that
// `teamgate keys retire` refuses a key a live replica still signs with: at
// start (then also forgetting replicas long gone) and after every key
// refresh, successful or not. A replica that cannot decrypt a new active
// key keeps signing with the old one and keeps saying so. One write per
// assertion.key_refresh, never on a request. A failure is logged: the
// report is a safety net for retire, not a reason to stop serving.
func (g *Gateway) reportSigningKey(ctx context.Context, atStart bool) {
	a := g.assert
	if a == nil || a.replicaID == "" {
		return
	}
	// Wall-clock time, like the `teamgate keys` commands that read it (the
	// gateway's clock may be a test's).
	now := time.Now()
	var forgetBefore time.Time
	if atStart {
		forgetBefore = now.Add(-forgetSigningReplicasAfter)
	}
	kid := a.cache.Signer().KeyID()
	if err := g.deps.SigningKeys.RecordSigningReplica(ctx, a.replicaID, kid, now, forgetBefore); err != nil && ctx.Err() == nil {
		g.log.Warn("recording which key this replica signs with failed; `teamgate keys retire` may not see that it still signs with it",
			"replica_id", a.replicaID, "kid", kid, "error", err)
	}
}
