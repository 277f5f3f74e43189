package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Signing algorithms teamgate issues assertions with. Both are accepted by
// LiteLLM's JWT mode and by every mainstream JWT library; HS256 is out of
// the question because verifiers would need the secret.
const (
	ES256 = "ES256"
	RS256 = "RS256"
)

// minRSABits is the smallest RSA key accepted for RS256.
const minRSABits = 2048

// Key is a private signing key with its JWK key id.
type Key struct {
	// ID is the RFC 7638 thumbprint (SHA-256, base64url) of the public key:
	// the same key gets the same id on every replica and after every
	// restart, without coordination.
	ID        string
	Algorithm string        // ES256 or RS256
	Private   crypto.Signer // *ecdsa.PrivateKey (P-256) or *rsa.PrivateKey
}

// NewKey checks that priv suits alg and computes its key id.
func NewKey(priv crypto.Signer, alg string) (*Key, error) {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if alg != ES256 {
			return nil, fmt.Errorf("an EC key signs ES256, not %s", alg)
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ES256 needs an EC key on P-256, not %s", k.Curve.Params().Name)
		}
	case *rsa.PrivateKey:
		if alg != RS256 {
			return nil, fmt.Errorf("an RSA key signs RS256, not %s", alg)
		}
		if n := k.N.BitLen(); n < minRSABits {
			return nil, fmt.Errorf("RS256 needs an RSA key of at least %d bits, not %d", minRSABits, n)
		}
	default:
		return nil, fmt.Errorf("unsupported key type %T (want an EC P-256 or RSA private key)", priv)
	}
	id, err := keyID(priv.Public())
	if err != nil {
		return nil, err
	}
	return &Key{ID: id, Algorithm: alg, Private: priv}, nil
}

// GenerateKey makes a fresh key for alg.
func GenerateKey(alg string) (*Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, minRSABits)
	default:
		return nil, fmt.Errorf("unsupported algorithm %q (want %s or %s)", alg, ES256, RS256)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return NewKey(priv, alg)
}

// PublicJWK is the key as published in the JWKS: public part only, with
// kid, alg and use.
func (k *Key) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"}
}

// keyID is the RFC 7638 thumbprint of pub.
func keyID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// AlgorithmOf names the algorithm a private key signs with, "" if none.
func AlgorithmOf(priv crypto.Signer) string {
	switch priv.(type) {
	case *ecdsa.PrivateKey:
		return ES256
	case *rsa.PrivateKey:
		return RS256
	}
	return ""
}

// ParsePrivateKeyPEM reads the first private key in PEM data: PKCS#8
// ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
// Other blocks (such as the "EC PARAMETERS" block `openssl ecparam -genkey`
// writes first, or certificates) are skipped. Errors never quote the key.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key found (want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)")
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted {
			return nil, errors.New("the PEM private key is encrypted; store it unencrypted and protect the file instead")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the PEM private key is encrypted; store it unencrypted and protect the file instead")
		default:
			continue
		}
		if err != nil {
			// The parser's message describes the structure, not the key bytes.
			return nil, fmt.Errorf("invalid %s block: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok || AlgorithmOf(signer) == "" {
			return nil, fmt.Errorf("unsupported key type %T in %s block (want EC P-256 or RSA)", key, block.Type)
		}
		return signer, nil
	}
}
