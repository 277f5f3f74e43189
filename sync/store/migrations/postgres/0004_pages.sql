-- What teamgate's own pages need (sync/store/pages.go).
--
-- users.default_team_id: the team a user chose on /teamgate/me for requests
-- that name none. No foreign key: a team is never deleted, and the gateway
-- ignores a choice that is no longer one of the user's teams.
-- users.in_admin_group: whether the user was in one of admin.group_ids at
-- their last sync (a user's groups are only known at sign-in).
-- sync_events.actor: who made an admin change (outcome 'admin'); '' for
-- reconciles.

ALTER TABLE users ADD COLUMN default_team_id text;
ALTER TABLE users ADD COLUMN in_admin_group boolean NOT NULL DEFAULT false;
ALTER TABLE sync_events ADD COLUMN actor text NOT NULL DEFAULT '';

-- The sync log filtered by outcome (failed syncs, admin changes).
CREATE INDEX sync_events_outcome_at ON sync_events (outcome, at, id);
