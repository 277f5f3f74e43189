-- Background sync and session re-validation (sync/store/background.go).
--
-- sync_state: named values the background sync keeps between runs, such as
-- the Graph groups deltaLink and when the last run ended; one row per name.
-- sync_events.kind: what started the reconcile: 'signin', 'background' or
-- 'revalidate' (existing rows were all sign-ins); sync_events.detail: a short
-- free-text note, e.g. why a background run started over with a full sync.
-- users.validated_at: when the user was last checked against Graph (sign-in
-- or re-validation); existing users were last checked at their last sign-in.
-- sessions.ended_reason: set when teamgate ended the session (the user was
-- disabled, deleted or unassigned); the row is kept until it expires so that
-- the user can be shown why. '' for a live session.

CREATE TABLE sync_state (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

ALTER TABLE sync_events ADD COLUMN kind TEXT NOT NULL DEFAULT 'signin';
-- Admin changes to team members (outcome 'admin') have a kind of their own.
UPDATE sync_events SET kind = 'admin' WHERE outcome = 'admin';
ALTER TABLE sync_events ADD COLUMN detail TEXT NOT NULL DEFAULT '';

-- The sync log filtered by kind (background runs, re-validations).
CREATE INDEX sync_events_kind_at ON sync_events (kind, at, id);

ALTER TABLE users ADD COLUMN validated_at TEXT;
UPDATE users SET validated_at = last_login_at;

ALTER TABLE sessions ADD COLUMN ended_reason TEXT NOT NULL DEFAULT '';
