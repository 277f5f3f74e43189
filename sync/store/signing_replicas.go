package store

import (
	"context"
	"time"
)

// SigningReplica is a running replica's report of the key it signs
// identity assertions with. Every replica writes its own row at start and
// at every assertion.key_refresh, also when re-reading the keys fails and
// it keeps signing with an older key, so `teamgate keys retire` can refuse
// a key a live replica still signs with.
type SigningReplica struct {
	ID     string    // drawn at start, one per process
	KeyID  string    // the kid it signs with
	SeenAt time.Time // its last report
}

// SigningReplicaStore keeps the replicas' reports.
type SigningReplicaStore interface {
	// RecordSigningReplica inserts r or replaces the row of r.ID (one
	// INSERT … ON CONFLICT).
	RecordSigningReplica(ctx context.Context, r SigningReplica) error
	// SigningReplicas returns the replicas seen at or after since, by kid
	// then replica id.
	SigningReplicas(ctx context.Context, since time.Time) ([]SigningReplica, error)
	// DeleteSigningReplicas forgets the replicas not seen since before and
	// reports how many there were.
	DeleteSigningReplicas(ctx context.Context, before time.Time) (int64, error)
}

// One statement each, the same text on both dialects.
const (
	recordSigningReplica = "INSERT INTO signing_replicas (replica_id, kid, seen_at) VALUES ($1, $2, $3)" +
		" ON CONFLICT (replica_id) DO UPDATE SET kid = excluded.kid, seen_at = excluded.seen_at"
	selectSigningReplicas = "SELECT replica_id, kid, seen_at FROM signing_replicas WHERE seen_at >= $1 ORDER BY kid, replica_id"
	deleteSigningReplicas = "DELETE FROM signing_replicas WHERE seen_at < $1"
)

type signingReplicaRow struct {
	ID     string `db:"replica_id"`
	KeyID  string `db:"kid"`
	SeenAt dbTime `db:"seen_at"`
}

func (s *sqlStore) RecordSigningReplica(ctx context.Context, r SigningReplica) error {
	if _, err := s.writer().exec(ctx, recordSigningReplica, r.ID, r.KeyID, s.d.time(r.SeenAt)); err != nil {
		return wrapErr("record signing replica", err)
	}
	return nil
}

func (s *sqlStore) SigningReplicas(ctx context.Context, since time.Time) ([]SigningReplica, error) {
	var rows []signingReplicaRow
	if err := s.reader().sel(ctx, &rows, selectSigningReplicas, s.d.time(since)); err != nil {
		return nil, wrapErr("signing replicas", err)
	}
	out := make([]SigningReplica, len(rows))
	for i, r := range rows {
		out[i] = SigningReplica{ID: r.ID, KeyID: r.KeyID, SeenAt: r.SeenAt.T}
	}
	return out, nil
}

func (s *sqlStore) DeleteSigningReplicas(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.writer().exec(ctx, deleteSigningReplicas, s.d.time(before))
	if err != nil {
		return 0, wrapErr("delete signing replicas", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrapErr("delete signing replicas", err)
	}
	return n, nil
}

var _ SigningReplicaStore = (*sqlStore)(nil)
