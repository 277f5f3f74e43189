package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
)

// Test keys are generated once per process: RSA generation is slow.
var (
	testEC      = mustEC(elliptic.P256())
	testRSA     = mustRSA(2048)
	testRSA1024 = mustRSA(1024)
	testP384    = mustEC(elliptic.P384())
)

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func pemBlock(typ string, der []byte, headers map[string]string) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: der}))
}

func pkcs8(t testing.TB, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func sec1(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParsePrivateKeyPEM(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	cert := pemBlock("CERTIFICATE", []byte("not really a certificate"), nil)
	tests := []struct {
		name    string
		pem     string
		wantAlg string // "" when an error is expected
		wantErr string
	}{
		{"PKCS#8 EC", pemBlock("PRIVATE KEY", pkcs8(t, testEC), nil), ES256, ""},
		{"SEC1 EC", pemBlock("EC PRIVATE KEY", sec1(t, testEC), nil), ES256, ""},
		{"SEC1 EC after EC PARAMETERS (openssl ecparam -genkey)",
			pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}, nil) + pemBlock("EC PRIVATE KEY", sec1(t, testEC), nil), ES256, ""},
		{"PKCS#1 RSA", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSA), nil), RS256, ""},
		{"PKCS#8 RSA after a certificate", cert + pemBlock("PRIVATE KEY", pkcs8(t, testRSA), nil), RS256, ""},
		{"legacy encrypted PEM", pemBlock("RSA PRIVATE KEY", []byte("x"), map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}), "", "encrypted"},
		{"PKCS#8 encrypted", pemBlock("ENCRYPTED PRIVATE KEY", []byte("x"), nil), "", "encrypted"},
		{"Ed25519 is not offered", pemBlock("PRIVATE KEY", pkcs8(t, edKey), nil), "", "unsupported key type"},
		{"corrupt PKCS#8", pemBlock("PRIVATE KEY", []byte("corrupt key bytes"), nil), "", "invalid PRIVATE KEY block"},
		{"public key only", pemBlock("PUBLIC KEY", []byte("x"), nil), "", "no PEM private key"},
		{"not PEM", "hello", "", "no PEM private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrivateKeyPEM([]byte(tt.pem))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				// Errors must never carry key material.
				for _, blk := range strings.Split(tt.pem, "\n") {
					if len(blk) > 16 && strings.Contains(err.Error(), blk) {
						t.Errorf("error quotes the PEM: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a := AlgorithmOf(got); a != tt.wantAlg {
				t.Errorf("algorithm = %s, want %s", a, tt.wantAlg)
			}
		})
	}
}

func TestNewKey(t *testing.T) {
	tests := []struct {
		name    string
		key     crypto.Signer
		alg     string
		wantErr string
	}{
		{"EC P-256 for ES256", testEC, ES256, ""},
		{"RSA 2048 for RS256", testRSA, RS256, ""},
		{"EC for RS256", testEC, RS256, "an EC key signs ES256"},
		{"RSA for ES256", testRSA, ES256, "an RSA key signs RS256"},
		{"P-384 for ES256", testP384, ES256, "P-256"},
		{"RSA 1024", testRSA1024, RS256, "at least 2048 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewKey(tt.key, tt.alg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The kid is the RFC 7638 thumbprint: 32 bytes of SHA-256,
			// base64url, the same for the same key every time.
			if b, err := base64.RawURLEncoding.DecodeString(k.ID); err != nil || len(b) != 32 {
				t.Errorf("kid %q is not a base64url SHA-256", k.ID)
			}
			again, _ := NewKey(tt.key, tt.alg)
			if again.ID != k.ID {
				t.Errorf("kid not stable: %s then %s", k.ID, again.ID)
			}
			jwk := k.PublicJWK()
			if !jwk.IsPublic() || jwk.KeyID != k.ID || jwk.Algorithm != tt.alg || jwk.Use != "sig" {
				t.Errorf("public JWK = %+v", jwk)
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	for _, alg := range []string{ES256, RS256} {
		k, err := GenerateKey(alg)
		if err != nil || k.Algorithm != alg || AlgorithmOf(k.Private) != alg {
			t.Errorf("GenerateKey(%s) = %+v, %v", alg, k, err)
		}
	}
	if _, err := GenerateKey("HS256"); err == nil {
		t.Error("GenerateKey(HS256) succeeded")
	}
}
