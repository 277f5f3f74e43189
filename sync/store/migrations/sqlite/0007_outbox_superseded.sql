-- A parked outbox operation an operator tried to retry after a later
-- operation on the same subject (team, user, or team and user) was already
-- delivered is set aside as 'superseded' (store/outbox.go, RequeueOutbox):
-- delivering it now would undo the later change. superseded_by is that
-- later operation's id.
--
-- SQLite cannot change a CHECK constraint, so the table is rebuilt. The
-- AUTOINCREMENT high-water mark is carried over (RENAME moves the
-- sqlite_sequence row), so pruned ids are still never reused.

CREATE TABLE litellm_outbox_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    team_id         TEXT NOT NULL DEFAULT '',
    user_id         TEXT NOT NULL DEFAULT '',
    body            TEXT NOT NULL,               -- the JSON request body
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'parked', 'done', 'superseded')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT NOT NULL DEFAULT '',
    lease_until     TEXT,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    superseded_by   INTEGER
) STRICT;

INSERT INTO litellm_outbox_new (id, kind, team_id, user_id, body, status, attempts, next_attempt_at, lease_owner, lease_until, last_error, created_at, updated_at)
    SELECT id, kind, team_id, user_id, body, status, attempts, next_attempt_at, lease_owner, lease_until, last_error, created_at, updated_at FROM litellm_outbox;
DELETE FROM sqlite_sequence WHERE name = 'litellm_outbox_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'litellm_outbox_new', seq FROM sqlite_sequence WHERE name = 'litellm_outbox';
DROP TABLE litellm_outbox;
ALTER TABLE litellm_outbox_new RENAME TO litellm_outbox;

CREATE INDEX litellm_outbox_pending ON litellm_outbox (id) WHERE status = 'pending';
CREATE INDEX litellm_outbox_pending_team ON litellm_outbox (team_id, user_id, id) WHERE status = 'pending' AND team_id <> '';
CREATE INDEX litellm_outbox_pending_user ON litellm_outbox (user_id, team_id, id) WHERE status = 'pending' AND user_id <> '';
CREATE INDEX litellm_outbox_parked ON litellm_outbox (id) WHERE status = 'parked';
CREATE INDEX litellm_outbox_done ON litellm_outbox (updated_at) WHERE status = 'done';
