-- Session lifecycle (sync/store/sessions.go).
--
-- sessions.last_seen_at: when the session last made a request, written at
-- most every few minutes per session (never per request); NULL until the
-- first write, which readers treat as created_at. It drives
-- session.idle_timeout.

ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
