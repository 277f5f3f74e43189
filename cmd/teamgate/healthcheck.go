package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// cmdHealthcheck asks a running teamgate whether it is up. It exists for
// container HEALTHCHECKs in images without curl (distroless, scratch).
func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("healthcheck", "healthcheck [--url URL] [--ca-file PEM] [--server-name NAME] [--insecure-skip-verify]", stderr)
	target := fs.String("url", "http://127.0.0.1:4180/teamgate/healthz", "health endpoint to ask (https:// when teamgate serves TLS itself)")
	caFile := fs.String("ca-file", "", "https: trust the certificates in this PEM file (e.g. server.tls_cert_file) instead of the system's")
	serverName := fs.String("server-name", "", "https: the name the certificate must carry, when it is not the --url host (e.g. gateway.example.com)")
	insecure := fs.Bool("insecure-skip-verify", false, "https: do not verify the certificate (a loopback probe)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return usageError{fmt.Sprintf("--url %q: want an http:// or https:// URL", *target)}
	}
	tlsCfg := &tls.Config{ServerName: *serverName, InsecureSkipVerify: *insecure, MinVersion: tls.VersionTLS12}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		tlsCfg.RootCAs = x509.NewCertPool()
		if !tlsCfg.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-file %s: no PEM certificate in it", *caFile)
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return usageError{"--url: " + err.Error()}
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *target, res.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
