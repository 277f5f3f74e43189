-- Keys that sign the identity assertion (gateway/assertion), generated once
-- so that every replica signs with the same key. private_key is sealed
-- (AES-GCM under a key derived from session.secret); public_jwk is the
-- published JWK. At most one key per algorithm is active (may sign): the
-- partial unique index makes concurrent first starts converge, the losers'
-- INSERT … ON CONFLICT DO NOTHING inserting nothing. Inactive keys are still
-- published until their row is deleted.

CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,                -- RFC 7638 thumbprint
    alg         text NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    private_key bytea NOT NULL,
    public_jwk  text NOT NULL,
    created_at  timestamptz NOT NULL,
    active      boolean NOT NULL DEFAULT true
);

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE active;
