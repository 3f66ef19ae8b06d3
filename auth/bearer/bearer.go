// Package bearer authenticates requests that carry a Bearer token
// ("Authorization: Bearer <token>"), by handing the token to one or more
// [Verifier]s: auth/token's Verifier for the JWTs Berth's token service
// issues, auth/jwks' Verifier for an external single sign-on issuer.
//
// Combine it with HTTP Basic through auth.ByScheme:
//
//	authn := auth.ByScheme(basic.New(…), bearer.New(tokenVerifier, ssoVerifier))
//
// # Errors
//
// A request without an Authorization header is auth.Anonymous. A token that
// no verifier accepts, an empty or oversized token, or another scheme is an
// error matching auth.ErrUnauthenticated; a verifier's other errors (its key
// set cannot be fetched) are returned as they are.
//
// # Concurrency
//
// An Authenticator is safe for concurrent use if its verifiers are.
//
// # Security
//
// Tokens longer than MaxTokenBytes are refused before any parsing. The
// token itself never appears in errors.
package bearer

import (
	"context"
	"errors"
	"net/http"

	"github.com/berth-dev/berth/auth"
)

// MaxTokenBytes bounds the length of a bearer token.
const MaxTokenBytes = 8 << 10

// Verifier checks a bearer token. It returns the token's identity, or an
// error matching auth.ErrUnauthenticated when the token is invalid or not
// one it knows (so that the next verifier may try), or another error when
// it cannot decide. The request's context carries auth.WithUploadGrace
// when the registry set it.
type Verifier interface {
	VerifyToken(ctx context.Context, token string) (*auth.Identity, error)
}

// Authenticator implements auth.Authenticator for Bearer tokens, trying
// each Verifier in turn.
type Authenticator struct {
	verifiers []Verifier
}

// New returns an authenticator over the verifiers.
func New(verifiers ...Verifier) *Authenticator { return &Authenticator{verifiers: verifiers} }

var _ auth.Authenticator = (*Authenticator)(nil)

// Authenticate implements auth.Authenticator.
func (a *Authenticator) Authenticate(r *http.Request) (*auth.Identity, error) {
	if r.Header.Get("Authorization") == "" {
		return auth.Anonymous, nil
	}
	tok, err := auth.BearerToken(r)
	if err != nil || len(tok) > MaxTokenBytes {
		return nil, auth.ErrUnauthenticated
	}
	return a.VerifyToken(r.Context(), tok)
}

// VerifyToken implements Verifier by trying each verifier in turn.
func (a *Authenticator) VerifyToken(ctx context.Context, tok string) (*auth.Identity, error) {
	if tok == "" || len(tok) > MaxTokenBytes {
		return nil, auth.ErrUnauthenticated
	}
	var first error
	for _, v := range a.verifiers {
		id, err := v.VerifyToken(ctx, tok)
		if err == nil && id != nil {
			return id, nil
		}
		if err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
			return nil, err
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = auth.ErrUnauthenticated
	}
	return nil, first
}
