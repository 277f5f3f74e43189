package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and
// teamgate.test and its key as PEM files, and returns their paths.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "teamgate.test"},
		DNSNames:              []string{"teamgate.test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// With server.tls_cert_file and tls_key_file, serve speaks HTTPS; the
// health endpoint answers over it, and `teamgate healthcheck` reaches it
// with --ca-file (optionally --server-name) or --insecure-skip-verify.
func TestServeTLSAndHealthcheck(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	st := storetest.New(t, store.DialectSQLite) // nothing here depends on the database
	e := startE2E(t, st, e2eOptions{tweak: func(c *Config) {
		c.Server.TLSCertFile, c.Server.TLSKeyFile = certFile, keyFile
	}})
	addr := serveRaw(t, e)
	health := "https://" + addr + "/teamgate/healthz"

	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	res, body := do(t, &http.Client{Transport: tr, Timeout: 30 * time.Second}, mustReq(t, http.MethodGet, health))
	if res.StatusCode != http.StatusOK || res.TLS == nil {
		t.Errorf("GET %s: %d, TLS %v: %s", health, res.StatusCode, res.TLS != nil, body)
	}
	if res, err := http.Get("http://" + addr + "/teamgate/healthz"); err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("plain http answered 200 on the TLS listener")
		}
	}

	healthcheck := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"healthcheck"}, args...), mapEnv(nil), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	for _, ok := range [][]string{
		{"--url", health, "--ca-file", certFile},
		{"--url", health, "--ca-file", certFile, "--server-name", "teamgate.test"},
		{"--url", health, "--insecure-skip-verify"},
	} {
		if out, err := healthcheck(ok...); err != nil || out != "ok\n" {
			t.Errorf("healthcheck %q: %v %q", ok, err, out)
		}
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", health}, "certificate"}, // not trusted by the system
		{[]string{"--url", health, "--ca-file", certFile, "--server-name", "other.test"}, "certificate"},
		{[]string{"--url", "http://" + addr + "/teamgate/healthz"}, "400"},
		{[]string{"--url", "ftp://" + addr + "/"}, "want an http:// or https:// URL"},
		{[]string{"--url", health, "--ca-file", keyFile}, "no PEM certificate"},
	} {
		if _, err := healthcheck(bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("healthcheck %q: %v, want an error mentioning %q", bad.args, err, bad.want)
		}
	}
}
