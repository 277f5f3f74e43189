-- Rotating the assertion signing key without restarting replicas
-- (gateway/assertion, `teamgate keys`). A key inserted by `teamgate keys
-- rotate` is published at once but inactive, with activate_at set: once
-- that time has passed (every replica has re-read the keys and every
-- verifier's cached JWKS has expired), the first replica to notice makes it
-- the active key and the previous one inactive, stamping deactivated_at.
-- An inactive key stays published until `teamgate keys retire` deletes its
-- row, which it allows once deactivated_at + the assertion lifetime (and a
-- refresh interval) has passed.

ALTER TABLE signing_keys ADD COLUMN activate_at TEXT;
ALTER TABLE signing_keys ADD COLUMN deactivated_at TEXT;
