package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/textproto"

	"github.com/teamgate/teamgate/gateway/assertion"
)

// maxCachedAssertions bounds the assertion cache like the session cache.
const maxCachedAssertions = maxCachedSessions

// signedIdentity is the gateway's side of the signed identity assertion:
// the keys (and the JWKS they publish), the caching signer and where the
// token goes on the upstream request.
type signedIdentity struct {
	keys          *assertion.KeySet
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
	})
	if err != nil {
		return err
	}
	signer, err := assertion.NewSigner(keys.Signing(), assertion.Options{
		Issuer:        g.publicURL,
		Audience:      a.audience(g.cfg.Upstream.URL),
		Lifetime:      a.Lifetime.Std(),
		TeamsMaxBytes: g.cfg.Upstream.GroupsMaxBytes,
		Now:           g.now,
	})
	if err != nil {
		return fmt.Errorf("assertion: %w", err)
	}
	g.assert = &signedIdentity{
		keys:          keys,
		cache:         assertion.NewCache(signer, maxCachedAssertions),
		header:        textproto.CanonicalMIMEHeaderKey(a.Header),
		authorization: a.AuthorizationHeader,
	}
	g.log.Info("identity assertions on", "alg", a.Alg, "kid", signer.KeyID(), "key_source", keys.Source(),
		"resealed_for_current_secrets", keys.Resealed(), "header", g.assert.header, "authorization_header", a.AuthorizationHeader)
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
