-- Keys that sign the identity assertion (gateway/assertion), generated once
-- so that every replica signs with the same key. private_key is sealed
-- (AES-GCM under a key derived from session.secret); public_jwk is the
-- published JWK. At most one key per algorithm is active (may sign): the
-- partial unique index makes concurrent first starts converge, the losers'
-- INSERT … ON CONFLICT DO NOTHING inserting nothing. Inactive keys are still
-- published until their row is deleted.

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,                -- RFC 7638 thumbprint
    alg         TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    private_key BLOB NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
) STRICT;

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE active;
