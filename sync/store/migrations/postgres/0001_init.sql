-- teamgate schema, PostgreSQL flavour. Model and id lists are JSON arrays in
-- text columns (the same representation as on SQLite).

CREATE TABLE users (
    id              text PRIMARY KEY,            -- Entra object id (oid)
    email           text NOT NULL DEFAULT '',
    upn             text NOT NULL DEFAULT '',
    display_name    text NOT NULL DEFAULT '',
    user_role       text NOT NULL DEFAULT '',
    max_budget      double precision,
    budget_duration text NOT NULL DEFAULT '',
    models          text NOT NULL DEFAULT '[]',
    created_at      timestamptz NOT NULL,
    last_login_at   timestamptz
);

CREATE TABLE teams (
    id              text PRIMARY KEY,            -- Entra group object id
    alias           text NOT NULL,
    max_budget      double precision,
    budget_duration text NOT NULL DEFAULT '',
    models          text NOT NULL DEFAULT '[]',
    tpm_limit       bigint,
    rpm_limit       bigint,
    assigned        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE INDEX teams_assigned ON teams (id) WHERE assigned;

CREATE TABLE memberships (
    team_id  text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id  text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     text NOT NULL,
    source   text NOT NULL CHECK (source IN ('entra', 'manual')),
    added_at timestamptz NOT NULL,
    PRIMARY KEY (team_id, user_id)
);

CREATE INDEX memberships_user ON memberships (user_id, team_id);

-- No foreign key on user_id: failed reconciles are recorded even when the
-- user row was never written.
CREATE TABLE sync_events (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             text NOT NULL,
    at                  timestamptz NOT NULL,
    teams_created       text NOT NULL DEFAULT '[]',
    teams_renamed       text NOT NULL DEFAULT '[]',
    teams_unassigned    text NOT NULL DEFAULT '[]',
    memberships_added   text NOT NULL DEFAULT '[]',
    memberships_removed text NOT NULL DEFAULT '[]',
    duration_ns         bigint NOT NULL DEFAULT 0,
    outcome             text NOT NULL,
    error               text NOT NULL DEFAULT ''
);

CREATE INDEX sync_events_user_at ON sync_events (user_id, at, id);
CREATE INDEX sync_events_at ON sync_events (at, id);

CREATE TABLE sessions (
    id         text PRIMARY KEY,                 -- SHA-256 hex of the cookie's opaque id
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);
