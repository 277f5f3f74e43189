package main

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/gateway/assertion"
	"github.com/teamgate/teamgate/gateway/assertion/assertiontest"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// Replicas sharing one database converge on one generated signing key, even
// when they start at the same moment, and publish the same JWKS.
func TestReplicasShareOneSigningKey(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			stores := storetest.Replicas(t, backend, 6)

			// Concurrent first starts through the real adapter and SQL.
			kids := make([]string, len(stores))
			errs := make([]error, len(stores))
			var wg sync.WaitGroup
			for i, st := range stores {
				wg.Go(func() {
					ks, err := assertion.Load(context.Background(), assertion.LoadOptions{
						Algorithm: assertion.ES256, Store: keyAdapter{st}, Secrets: []string{e2eSessKey},
					})
					if err == nil {
						kids[i] = ks.Signing().ID
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
				if kids[i] != kids[0] {
					t.Fatalf("replicas sign with different keys: %v", kids)
				}
			}
			stored, err := stores[0].SigningKeys(t.Context())
			if err != nil || len(stored) != 1 || stored[0].ID != kids[0] {
				t.Fatalf("stored keys %+v, %v; want exactly %s", stored, err, kids[0])
			}

			// Two running teamgates on that database.
			a, b := startE2E(t, stores[0], e2eOptions{}), startE2E(t, stores[1], e2eOptions{})
			jwksA, etagA := fetchJWKS(t, a.gw.URL)
			jwksB, etagB := fetchJWKS(t, b.gw.URL)
			if jwksA != jwksB || etagA != etagB || etagA == "" {
				t.Fatalf("replicas publish different JWKS:\n%s (%s)\n%s (%s)", jwksA, etagA, jwksB, etagB)
			}
			for _, tc := range []struct {
				name         string
				signer, jwks *e2e
			}{{"a's assertion, b's JWKS", a, b}, {"b's assertion, a's JWKS", b, a}} {
				alice := tc.signer.browser()
				alice.signIn(tc.signer.gw.URL, "/", id("alice"))
				alice.api("GET", tc.signer.gw.URL+"/v1/models")
				jwt := tc.signer.upstream.last(t).Header.Get("X-Teamgate-Assertion")
				v := assertiontest.Verifier{JWKSURL: tc.jwks.gw.URL + gateway.JWKSPath,
					Issuer: tc.signer.app.cfg.Server.PublicURL, Audience: tc.signer.app.cfg.Upstream.URL}
				got, err := v.Verify(t.Context(), jwt)
				if err != nil || got.KeyID != kids[0] {
					t.Errorf("%s: kid %s, %v; want kid %s", tc.name, got.KeyID, err, kids[0])
				}
			}
		})
	}
}

func fetchJWKS(t *testing.T, base string) (body, etag string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+gateway.JWKSPath, nil)
	res, body := do(t, http.DefaultClient, req)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET JWKS: %d", res.StatusCode)
	}
	return body, res.Header.Get("ETag")
}
