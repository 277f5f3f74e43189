-- Which key each running replica signs identity assertions with
-- (gateway/signing_replicas.go). A replica writes its row, keyed by an id
-- drawn at start, when it starts and at every assertion.key_refresh, even
-- when re-reading the keys fails and it keeps signing with an older key.
-- `teamgate keys retire` refuses a key a live replica (seen within a few
-- key_refresh intervals) still signs with; `teamgate keys list` counts
-- them. Rows of replicas gone for a day are deleted when a replica starts.

CREATE TABLE signing_replicas (
    replica_id text PRIMARY KEY,
    kid        text NOT NULL,
    seen_at    timestamptz NOT NULL
);
