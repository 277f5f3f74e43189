package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/textproto"
	"time"

	"github.com/teamgate/teamgate/gateway/assertion"
)

// maxCachedAssertions bounds the assertion cache like the session cache.
const maxCachedAssertions = maxCachedSessions

// signedIdentity is the gateway's side of the signed identity assertion:
// the keys (and the JWKS they publish), the caching signer and where the
// token goes on the upstream request.
type signedIdentity struct {
	keys          *assertion.KeySet
	signerOpts    assertion.Options // for a new signer after a rotation
	refresh       time.Duration     // assertion.key_refresh; 0: keys never change
	replicaID     string            // names this process in signing_replicas; "" without a key store
	cache         *assertion.Cache
	header        string // canonical name
	authorization bool   // also "Authorization: Bearer" when the client sent none
}

// setUpAssertion loads the signing key and prepares the signer. The
// assertion header joins the stripped identity headers whether or not
// assertions are on: a client must never be able to hand the upstream an
// assertion of its own.
func (g *Gateway) setUpAssertion(ctx context.Context) error {
	a := g.cfg.Assertion
	g.headers.own(a.Header)
	if !a.On() {
		return nil
	}
	var ks assertion.KeyStore
	if g.deps.SigningKeys != nil {
		ks = g.deps.SigningKeys
	} else if a.KeyFile == "" {
		g.log.Warn("identity assertions are signed with a key held in memory only: other replicas cannot verify against it " +
			"and it changes at every restart (set assertion.key_file, or give the gateway the database)")
	}
	keys, err := assertion.Load(ctx, assertion.LoadOptions{
		Algorithm: a.Alg, KeyFile: a.KeyFile, Store: ks, Secrets: g.cfg.Session.Secrets(), Now: g.now,
		PublishKeyFiles: a.PublishKeyFiles, Log: g.log,
	})
	if err != nil {
		return err
	}
	opts := assertion.Options{
		Issuer:        g.publicURL,
		Audience:      a.audience(g.cfg.Upstream.URL),
		Lifetime:      a.Lifetime.Std(),
		TeamsMaxBytes: g.cfg.Upstream.GroupsMaxBytes,
		Now:           g.now,
	}
	signer, err := assertion.NewSigner(keys.Signing(), opts)
	if err != nil {
		return fmt.Errorf("assertion: %w", err)
	}
	g.assert = &signedIdentity{
		keys:          keys,
		signerOpts:    opts,
		cache:         assertion.NewCache(signer, maxCachedAssertions),
		header:        textproto.CanonicalMIMEHeaderKey(a.Header),
		authorization: a.AuthorizationHeader,
	}
	g.log.Info("identity assertions on", "alg", a.Alg, "kid", signer.KeyID(), "key_source", keys.Source(),
		"resealed_for_current_secrets", keys.Resealed(), "header", g.assert.header, "authorization_header", a.AuthorizationHeader)
	if ks != nil {
		g.assert.refresh = a.KeyRefresh.Std()
		g.assert.replicaID = newReplicaID()
		g.reportSigningKey(ctx, true)
	}
	return nil
}

// keepRefreshingKeys re-reads the stored signing keys at every tick until
// ctx ends (see RefreshSigningKeys); New starts it with a ticker of
// assertion.key_refresh when the keys are in the database.
func (g *Gateway) keepRefreshingKeys(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			if err := g.RefreshSigningKeys(ctx); err != nil && ctx.Err() == nil {
				g.log.Warn("refreshing the assertion signing keys failed; the current keys stay in use", "error", err)
			}
		}
	}
}

// startKeyRefresh runs keepRefreshingKeys every assertion.key_refresh.
func (g *Gateway) startKeyRefresh(ctx context.Context) {
	if g.assert == nil || g.assert.refresh <= 0 {
		return
	}
	tick := time.NewTicker(g.assert.refresh)
	go func() {
		defer tick.Stop()
		g.keepRefreshingKeys(ctx, tick.C)
	}()
}

// RefreshSigningKeys re-reads the stored signing keys now: the JWKS (and
// its ETag) then publishes every stored key, including one another replica
// or `teamgate keys rotate` added, and a rotation whose activation time has
// passed becomes the signing key. Either way, it then records which key
// this replica signs with (signing_replicas.go). It does nothing when
// assertions are off.
func (g *Gateway) RefreshSigningKeys(ctx context.Context) error {
	if g.assert == nil {
		return nil
	}
	err := g.refreshSigningKeys(ctx)
	g.reportSigningKey(ctx, false)
	return err
}

func (g *Gateway) refreshSigningKeys(ctx context.Context) error {
	old := g.assert.keys.Signing()
	changed, err := g.assert.keys.Refresh(ctx)
	if err != nil || !changed {
		return err
	}
	if k := g.assert.keys.Signing(); k.ID != old.ID {
		signer, err := assertion.NewSigner(k, g.assert.signerOpts)
		if err != nil {
			return fmt.Errorf("assertion: %w", err)
		}
		g.assert.cache.SetSigner(signer)
		g.log.Info("identity assertions now signed with a new key", "kid", k.ID, "previous_kid", old.ID)
	} else {
		g.log.Info("published assertion keys changed", "kid", k.ID)
	}
	return nil
}

// injectAssertion adds the signed-in user's assertion to an outbound
// request whose inbound copy has already been stripped. A signing failure
// (which an in-memory key does not really have) leaves the assertion out:
// an upstream that requires it then refuses the request, which fails closed.
func (g *Gateway) injectAssertion(h http.Header, info *requestInfo) {
	if g.assert == nil {
		return
	}
	e := info.principal
	jwt, err := g.assert.cache.Get(e.sessionID, info.team, e, func() assertion.Subject { return subjectOf(e) })
	if err != nil {
		g.log.Error("signing identity assertion", "user_id", e.principal.UserID, "error", err)
		return
	}
	setOne(h, g.assert.header, &info.values.assertion, jwt)
	if g.assert.authorization {
		if _, sent := h["Authorization"]; !sent {
			setOne(h, "Authorization", &info.values.bearer, "Bearer "+jwt)
		}
	}
}

// subjectOf is what an assertion says about the user of a session entry.
func subjectOf(e *principalEntry) assertion.Subject {
	teams := make([]string, 0, len(e.principal.Teams))
	for _, t := range e.principal.Teams {
		teams = append(teams, t.ID)
	}
	return assertion.Subject{UserID: e.principal.UserID, Email: e.principal.Email, Name: e.principal.DisplayName, Teams: teams}
}

// forgetAssertions drops a user's cached assertions with their sessions.
func (g *Gateway) forgetAssertions(userID string) {
	if g.assert != nil {
		g.assert.cache.ForgetUser(userID)
	}
}
