-- teamgate schema, SQLite flavour. Timestamps are fixed-width UTC ISO 8601
-- text (see rows.go), model and id lists are JSON arrays in text columns.
-- STRICT tables make SQLite enforce the declared column types.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,            -- Entra object id (oid)
    email           TEXT NOT NULL DEFAULT '',
    upn             TEXT NOT NULL DEFAULT '',
    display_name    TEXT NOT NULL DEFAULT '',
    user_role       TEXT NOT NULL DEFAULT '',
    max_budget      REAL,
    budget_duration TEXT NOT NULL DEFAULT '',
    models          TEXT NOT NULL DEFAULT '[]',
    created_at      TEXT NOT NULL,
    last_login_at   TEXT
) STRICT;

CREATE TABLE teams (
    id              TEXT PRIMARY KEY,            -- Entra group object id
    alias           TEXT NOT NULL,
    max_budget      REAL,
    budget_duration TEXT NOT NULL DEFAULT '',
    models          TEXT NOT NULL DEFAULT '[]',
    tpm_limit       INTEGER,
    rpm_limit       INTEGER,
    assigned        INTEGER NOT NULL DEFAULT 0 CHECK (assigned IN (0, 1)),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE INDEX teams_assigned ON teams (id) WHERE assigned;

CREATE TABLE memberships (
    team_id  TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     TEXT NOT NULL,
    source   TEXT NOT NULL CHECK (source IN ('entra', 'manual')),
    added_at TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
) STRICT;

CREATE INDEX memberships_user ON memberships (user_id, team_id);

-- No foreign key on user_id: failed reconciles are recorded even when the
-- user row was never written.
CREATE TABLE sync_events (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id             TEXT NOT NULL,
    at                  TEXT NOT NULL,
    teams_created       TEXT NOT NULL DEFAULT '[]',
    teams_renamed       TEXT NOT NULL DEFAULT '[]',
    teams_unassigned    TEXT NOT NULL DEFAULT '[]',
    memberships_added   TEXT NOT NULL DEFAULT '[]',
    memberships_removed TEXT NOT NULL DEFAULT '[]',
    duration_ns         INTEGER NOT NULL DEFAULT 0,
    outcome             TEXT NOT NULL,
    error               TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX sync_events_user_at ON sync_events (user_id, at, id);
CREATE INDEX sync_events_at ON sync_events (at, id);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,                 -- SHA-256 hex of the cookie's opaque id
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;

CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);
