package store

import (
	"context"
	"fmt"
	"time"
)

// SigningKey is a key the gateway signs identity assertions with, generated
// once and shared by every replica. PrivateKey is sealed by the gateway
// (the store never sees it in the clear); PublicJWK is the published JWK.
type SigningKey struct {
	ID         string // kid
	Algorithm  string // ES256 or RS256
	PrivateKey []byte
	PublicJWK  string
	CreatedAt  time.Time
	// Active keys may sign. At most one key per algorithm is active.
	Active bool
	// ActivateAt is set on a key `teamgate keys rotate` inserted: published
	// but not signing until then (nil otherwise).
	ActivateAt *time.Time
	// DeactivatedAt is when a key stopped being the active one (nil for an
	// active key, a key waiting for ActivateAt, or one older than rotation).
	DeactivatedAt *time.Time
}

// KeyStore keeps signing keys.
type KeyStore interface {
	// SigningKeys returns every key, newest first (ties by kid).
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// InsertSigningKey inserts k unless a key with its id exists or, k
	// being active, an active key of its algorithm exists (one INSERT …
	// ON CONFLICT DO NOTHING, so concurrent first starts converge on one
	// key); it reports whether k was inserted. Read the keys again
	// afterwards to learn which key won.
	InsertSigningKey(ctx context.Context, k SigningKey) (bool, error)
	// ResealSigningKey replaces the sealed private key of kid (the gateway
	// seals it again after session.secret was rotated); ErrNotFound for an
	// unknown kid.
	ResealSigningKey(ctx context.Context, kid string, privateKey []byte) error
	// ActivateSigningKey makes kid the active key of its algorithm at now:
	// the key active so far becomes inactive (DeactivatedAt = now), kid
	// loses its ActivateAt, and so does every other key of the algorithm
	// whose ActivateAt has passed (a rotation kid overtakes is void). It is
	// idempotent, so replicas racing to promote the same key agree;
	// ErrNotFound for an unknown kid.
	ActivateSigningKey(ctx context.Context, kid string, now time.Time) error
	// DeleteSigningKey removes kid, which is then no longer published, if
	// g still allows it when the statement runs (one DELETE … WHERE, so a
	// replica activating kid meanwhile is not undone); it reports whether
	// kid was removed, and ErrNotFound for an unknown kid.
	DeleteSigningKey(ctx context.Context, kid string, g RetireGuard) (bool, error)
}

// RetireGuard says which keys DeleteSigningKey may remove.
type RetireGuard struct {
	// AllowActive lets it remove the active key too (one that does not
	// sign: assertion.key_file signs, or its algorithm is not
	// assertion.alg). Otherwise an active key is kept.
	AllowActive bool
	// StoppedBy keeps a key that stopped signing (DeactivatedAt) after it:
	// its assertions may still be in use. Zero: no such limit.
	StoppedBy time.Time
}

// One statement each, the same text on both dialects ($n parameters, a
// boolean parameter binds as 0/1 on SQLite).
const (
	signingKeyCols   = "kid, alg, private_key, public_jwk, created_at, active, activate_at, deactivated_at"
	selectSigningKey = "SELECT " + signingKeyCols + " FROM signing_keys ORDER BY created_at DESC, kid"
	insertSigningKey = "INSERT INTO signing_keys (" + signingKeyCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
	resealSigningKey = "UPDATE signing_keys SET private_key = $2 WHERE kid = $1"
	// $1 kid, $2 allow active, $3 stopped-by cutoff.
	deleteSigningKey = "DELETE FROM signing_keys WHERE kid = $1 AND (NOT active OR $2)" +
		" AND (deactivated_at IS NULL OR deactivated_at <= $3)"
	countSigningKey = "SELECT count(*) FROM signing_keys WHERE kid = $1"
	// $1 kid, $2 now. The old active key is switched off before kid is
	// switched on, in one transaction: the unique index on active keys is
	// checked row by row.
	deactivateOthers = "UPDATE signing_keys SET active = false, activate_at = NULL," +
		" deactivated_at = CASE WHEN active THEN $2 ELSE deactivated_at END" +
		" WHERE alg = (SELECT alg FROM signing_keys WHERE kid = $1) AND kid <> $1 AND (active OR activate_at <= $2)"
	activateKey = "UPDATE signing_keys SET active = true, activate_at = NULL, deactivated_at = NULL WHERE kid = $1"
)

type signingKeyRow struct {
	ID         string `db:"kid"`
	Algorithm  string `db:"alg"`
	PrivateKey []byte `db:"private_key"`
	PublicJWK  string `db:"public_jwk"`
	CreatedAt  dbTime `db:"created_at"`
	Active     bool   `db:"active"`
	ActivateAt dbTime `db:"activate_at"`
	Deact      dbTime `db:"deactivated_at"`
}

// SigningKeys is read at start-up and then every assertion.key_refresh,
// never per request.
func (s *sqlStore) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	var rows []signingKeyRow
	if err := s.reader().sel(ctx, &rows, selectSigningKey); err != nil {
		return nil, wrapErr("signing keys", err)
	}
	out := make([]SigningKey, len(rows))
	for i, r := range rows {
		out[i] = SigningKey{ID: r.ID, Algorithm: r.Algorithm, PrivateKey: r.PrivateKey, PublicJWK: r.PublicJWK,
			CreatedAt: r.CreatedAt.T, Active: r.Active, ActivateAt: r.ActivateAt.ptr(), DeactivatedAt: r.Deact.ptr()}
	}
	return out, nil
}

func (s *sqlStore) InsertSigningKey(ctx context.Context, k SigningKey) (bool, error) {
	res, err := s.writer().exec(ctx, insertSigningKey, k.ID, k.Algorithm, k.PrivateKey, k.PublicJWK, s.d.time(k.CreatedAt), k.Active,
		s.d.timePtr(k.ActivateAt), s.d.timePtr(k.DeactivatedAt))
	if err != nil {
		return false, wrapErr("insert signing key", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrapErr("insert signing key", err)
	}
	return n == 1, nil
}

func (s *sqlStore) ResealSigningKey(ctx context.Context, kid string, privateKey []byte) error {
	res, err := s.writer().exec(ctx, resealSigningKey, kid, privateKey)
	if err != nil {
		return wrapErr("reseal signing key", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrapErr("reseal signing key", err)
	} else if n == 0 {
		return fmt.Errorf("store: reseal signing key %s: %w", kid, ErrNotFound)
	}
	return nil
}

func (s *sqlStore) ActivateSigningKey(ctx context.Context, kid string, now time.Time) error {
	return s.InTx(ctx, func(tx Tx) error {
		run := tx.(*sqlTx).run
		if _, err := run.exec(ctx, deactivateOthers, kid, s.d.time(now)); err != nil {
			return wrapErr("activate signing key", err)
		}
		res, err := run.exec(ctx, activateKey, kid)
		if err != nil {
			return wrapErr("activate signing key", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrapErr("activate signing key", err)
		} else if n == 0 {
			return fmt.Errorf("store: activate signing key %s: %w", kid, ErrNotFound)
		}
		return nil
	})
}

// noCutoff stands for a zero RetireGuard.StoppedBy: later than any
// DeactivatedAt.
var noCutoff = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

func (s *sqlStore) DeleteSigningKey(ctx context.Context, kid string, g RetireGuard) (bool, error) {
	cutoff := g.StoppedBy
	if cutoff.IsZero() {
		cutoff = noCutoff
	}
	res, err := s.writer().exec(ctx, deleteSigningKey, kid, g.AllowActive, s.d.time(cutoff))
	if err != nil {
		return false, wrapErr("delete signing key", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrapErr("delete signing key", err)
	}
	if n == 1 {
		return true, nil
	}
	// Kept, or absent: only the error differs.
	var count int
	if err := s.writer().get(ctx, &count, countSigningKey, kid); err != nil {
		return false, wrapErr("delete signing key", err)
	}
	if count == 0 {
		return false, fmt.Errorf("store: delete signing key %s: %w", kid, ErrNotFound)
	}
	return false, nil
}

// timePtr encodes an optional timestamp parameter; nil is NULL.
func (d *dialect) timePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.time(*t)
}
