package assertion

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
)

// A generated signing key is stored in the database so that every replica
// signs with the same key. The database must not hold it in the clear (a
// backup or a read-only SQL account would then be able to mint identities),
// so it is sealed with AES-256-GCM under keys derived from session.secret,
// which every replica already shares and which never enters the database.
//
// session.secret may be a list while it is being rotated (the new secret
// first, the old ones after). The key is sealed once per secret of the
// list, so a replica that has the new list and one that still has the old
// list can both open it; when a replica finds the stored copies do not
// match its list, it stores a fresh seal (see Load).

// sealLabel keeps the sealing keys independent of the cookie keys derived
// from the same secrets.
const sealLabel = "teamgate signing key encryption"

// sealVersion prefixes every sealed key so that the format can change.
const sealVersion byte = 2

// maxSecrets bounds the list (the count is one byte).
const maxSecrets = 16

// ErrUnseal means a stored key cannot be opened with any configured
// secret: session.secret changed since the key was stored (without the old
// secret kept in the list), or the row was tampered with.
var ErrUnseal = errors.New("signing key cannot be decrypted with session.secret")

// Sealer encrypts and decrypts private keys for storage.
type Sealer struct {
	aeads []cipher.AEAD // one per secret, the current secret first
}

// NewSealer derives a sealing key from each secret (session.secret, the
// current one first).
func NewSealer(secrets ...string) (*Sealer, error) {
	if len(secrets) == 0 || len(secrets) > maxSecrets {
		return nil, fmt.Errorf("sealer: want 1 to %d secrets, got %d", maxSecrets, len(secrets))
	}
	s := &Sealer{}
	for _, secret := range secrets {
		if secret == "" {
			return nil, errors.New("sealer: empty secret")
		}
		key, err := hkdf.Key(sha256.New, []byte(secret), nil, sealLabel, 32)
		if err != nil {
			return nil, fmt.Errorf("sealer: derive key: %w", err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("sealer: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sealer: %w", err)
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// aad binds a sealed key to its key id: a sealed blob copied onto another
// row does not open.
func aad(kid string) []byte { return []byte("teamgate signing key " + kid) }

// Seal returns version || count || count × (length || nonce || AES-GCM of
// the PKCS#8 key), one copy per secret in the sealer's order.
func (s *Sealer) Seal(k *Key) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("seal key %s: %w", k.ID, err)
	}
	defer clear(der)
	out := []byte{sealVersion, byte(len(s.aeads))}
	for _, aead := range s.aeads {
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("seal key %s: %w", k.ID, err)
		}
		entry := aead.Seal(nonce, nonce, der, aad(k.ID))
		out = binary.BigEndian.AppendUint16(out, uint16(len(entry)))
		out = append(out, entry...)
	}
	return out, nil
}

// Open decrypts a sealed key and checks that it is the key kid names.
// current reports whether the blob is sealed for exactly this sealer's
// secrets, in order; when it is not, the caller should store a fresh Seal.
func (s *Sealer) Open(kid, alg string, sealed []byte) (k *Key, current bool, err error) {
	entries, err := splitSealed(sealed)
	if err != nil {
		return nil, false, fmt.Errorf("key %s: %w (%v)", kid, ErrUnseal, err)
	}
	var der []byte
	current = len(entries) == len(s.aeads)
	for i := 0; current && i < len(entries); i++ {
		d, ok := s.open(s.aeads[i], entries[i], kid)
		if !ok {
			current = false
			break
		}
		if der == nil {
			der = d
		} else {
			clear(d)
		}
	}
	if der == nil {
	search:
		for _, aead := range s.aeads {
			for _, e := range entries {
				if d, ok := s.open(aead, e, kid); ok {
					der = d
					break search
				}
			}
		}
	}
	if der == nil {
		return nil, false, fmt.Errorf("key %s: %w", kid, ErrUnseal)
	}
	defer clear(der)
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, false, fmt.Errorf("key %s: stored key is not PKCS#8: %w", kid, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, false, fmt.Errorf("key %s: unsupported stored key type %T", kid, priv)
	}
	if k, err = NewKey(signer, alg); err != nil {
		return nil, false, fmt.Errorf("key %s: %w", kid, err)
	}
	if k.ID != kid {
		return nil, false, fmt.Errorf("key %s: stored key has id %s", kid, k.ID)
	}
	return k, current, nil
}

func (s *Sealer) open(aead cipher.AEAD, entry []byte, kid string) ([]byte, bool) {
	n := aead.NonceSize()
	if len(entry) < n+aead.Overhead() {
		return nil, false
	}
	der, err := aead.Open(nil, entry[:n], entry[n:], aad(kid))
	return der, err == nil
}

// splitSealed parses the framing of Seal.
func splitSealed(b []byte) ([][]byte, error) {
	if len(b) < 2 || b[0] != sealVersion {
		return nil, errors.New("unknown format")
	}
	count, rest := int(b[1]), b[2:]
	entries := make([][]byte, 0, count)
	for range count {
		if len(rest) < 2 {
			return nil, errors.New("truncated")
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+n {
			return nil, errors.New("truncated")
		}
		entries = append(entries, rest[2:2+n])
		rest = rest[2+n:]
	}
	if len(rest) != 0 || count == 0 {
		return nil, errors.New("malformed")
	}
	return entries, nil
}
