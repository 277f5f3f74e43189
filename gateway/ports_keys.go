package gateway

import (
	"context"
	"time"

	"github.com/teamgate/teamgate/gateway/assertion"
)

// SigningKey is a generated identity-assertion signing key as the database
// keeps it: the private key sealed with keys derived from session.secret,
// the public JWK in the clear.
type SigningKey = assertion.StoredKey

// SigningKeyStore keeps generated signing keys so that every replica signs
// with the same key. cmd/teamgate adapts the store to it. Without one (and
// without assertion.key_file) the gateway signs with a key of its own that
// only this process knows.
type SigningKeyStore interface {
	// SigningKeys returns every stored key, newest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// InsertSigningKey stores k unless its id exists or, k being active, an
	// active key of its algorithm exists; it reports whether k was inserted.
	InsertSigningKey(ctx context.Context, k SigningKey) (bool, error)
	// ResealSigningKey replaces the sealed private key of kid after
	// session.secret was rotated.
	ResealSigningKey(ctx context.Context, kid string, sealed []byte) error
	// ActivateSigningKey makes kid the active key of its algorithm at now
	// (a rotation whose time has come); idempotent.
	ActivateSigningKey(ctx context.Context, kid string, now time.Time) error
	// RecordSigningReplica notes that replica signs with kid at now (see
	// signing_replicas.go); a non-zero forgetBefore also deletes the notes
	// of replicas not seen since then.
	RecordSigningReplica(ctx context.Context, replica, kid string, now, forgetBefore time.Time) error
}

var _ assertion.KeyStore = SigningKeyStore(nil)
