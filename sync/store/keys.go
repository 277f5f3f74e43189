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
}

// One statement each, the same text on both dialects ($n parameters, a
// boolean parameter binds as 0/1 on SQLite).
const (
	signingKeyCols   = "kid, alg, private_key, public_jwk, created_at, active"
	selectSigningKey = "SELECT " + signingKeyCols + " FROM signing_keys ORDER BY created_at DESC, kid"
	insertSigningKey = "INSERT INTO signing_keys (" + signingKeyCols + ") VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
	resealSigningKey = "UPDATE signing_keys SET private_key = $2 WHERE kid = $1"
)

type signingKeyRow struct {
	ID         string `db:"kid"`
	Algorithm  string `db:"alg"`
	PrivateKey []byte `db:"private_key"`
	PublicJWK  string `db:"public_jwk"`
	CreatedAt  dbTime `db:"created_at"`
	Active     bool   `db:"active"`
}

// SigningKeys is read at start-up only, never per request.
func (s *sqlStore) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	var rows []signingKeyRow
	if err := s.reader().sel(ctx, &rows, selectSigningKey); err != nil {
		return nil, wrapErr("signing keys", err)
	}
	out := make([]SigningKey, len(rows))
	for i, r := range rows {
		out[i] = SigningKey{ID: r.ID, Algorithm: r.Algorithm, PrivateKey: r.PrivateKey, PublicJWK: r.PublicJWK,
			CreatedAt: r.CreatedAt.T, Active: r.Active}
	}
	return out, nil
}

func (s *sqlStore) InsertSigningKey(ctx context.Context, k SigningKey) (bool, error) {
	res, err := s.writer().exec(ctx, insertSigningKey, k.ID, k.Algorithm, k.PrivateKey, k.PublicJWK, s.d.time(k.CreatedAt), k.Active)
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
