-- The LiteLLM provisioning outbox: operations a reconcile committed, to be
-- delivered to LiteLLM's management API by a worker (sync/provision).
-- team_id and user_id are '' when an operation does not concern one; they
-- are the ordering keys (see store/outbox.go).

CREATE TABLE litellm_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL,
    team_id         text NOT NULL DEFAULT '',
    user_id         text NOT NULL DEFAULT '',
    body            text NOT NULL,               -- the JSON request body
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'parked', 'done')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_owner     text NOT NULL DEFAULT '',
    lease_until     timestamptz,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- Claiming scans pending operations in id order; the ordering check probes
-- earlier pending operations by (team, user) and (user, team). There is
-- deliberately no index on (status, id): on a table without statistics yet,
-- the planner took it for those probes and scanned every earlier operation.
CREATE INDEX litellm_outbox_pending ON litellm_outbox (id) WHERE status = 'pending';
CREATE INDEX litellm_outbox_pending_team ON litellm_outbox (team_id, user_id, id) WHERE status = 'pending' AND team_id <> '';
CREATE INDEX litellm_outbox_pending_user ON litellm_outbox (user_id, team_id, id) WHERE status = 'pending' AND user_id <> '';
-- The admin API's list of parked operations, and pruning delivered ones.
CREATE INDEX litellm_outbox_parked ON litellm_outbox (id) WHERE status = 'parked';
CREATE INDEX litellm_outbox_done ON litellm_outbox (updated_at) WHERE status = 'done';
