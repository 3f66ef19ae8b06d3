// Package basic authenticates HTTP Basic credentials.
//
// An [Authenticator] tries its [Verifier]s in turn: [Static] for a fixed
// user such as the bootstrap admin, and the registry-token manager of
// auth/tokens for scoped tokens. Wrap it with auth/throttle to slow down
// password guessing.
//
// # Errors
//
// Wrong credentials, and malformed Authorization headers, are
// auth.ErrUnauthenticated; a verifier's other errors (a backend failure)
// are returned as they are, so the caller denies with a server error.
//
// # Concurrency
//
// An Authenticator is safe for concurrent use if its verifiers are; Static
// is.
//
// # Security
//
// Static keeps only SHA-256 hashes of the user name and password (the
// bootstrap password is a high-entropy generated secret) and compares both
// in constant time; a wrong user name takes as long as a wrong password.
// Credentials never appear in errors or logs.
package basic

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/berth-dev/berth/auth"
)

// Verifier checks one user's credentials. It returns the identity, or an
// error matching auth.ErrUnauthenticated when they are wrong (or the user
// is unknown to it), or another error when it cannot decide.
type Verifier interface {
	Verify(ctx context.Context, user, password string) (*auth.Identity, error)
}

// Authenticator implements auth.Authenticator for HTTP Basic credentials,
// trying each Verifier in turn.
type Authenticator struct {
	verifiers []Verifier
}

// New returns an authenticator over the verifiers.
func New(verifiers ...Verifier) *Authenticator { return &Authenticator{verifiers: verifiers} }

var _ auth.Authenticator = (*Authenticator)(nil)

// Authenticate implements auth.Authenticator: no Authorization header is
// anonymous; Basic credentials that no verifier accepts are
// auth.ErrUnauthenticated.
func (a *Authenticator) Authenticate(r *http.Request) (*auth.Identity, error) {
	user, pw, ok := r.BasicAuth()
	if !ok {
		if r.Header.Get("Authorization") != "" {
			return nil, auth.ErrUnauthenticated
		}
		return auth.Anonymous, nil
	}
	for _, v := range a.verifiers {
		id, err := v.Verify(r.Context(), user, pw)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, auth.ErrUnauthenticated) {
			return nil, err
		}
	}
	return nil, auth.ErrUnauthenticated
}

// Static is a Verifier for one fixed user, such as the bootstrap admin.
type Static struct {
	user  [32]byte
	pass  [32]byte
	ident auth.Identity
}

// NewStatic returns a verifier accepting exactly user and password, as
// identity id (whose Subject is set to user).
func NewStatic(user, password string, id auth.Identity) *Static {
	id.Subject = user
	return &Static{user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(password)), ident: id}
}

// Verify implements Verifier.
func (s *Static) Verify(_ context.Context, user, password string) (*auth.Identity, error) {
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(password))
	if subtle.ConstantTimeCompare(u[:], s.user[:])&subtle.ConstantTimeCompare(p[:], s.pass[:]) != 1 {
		return nil, auth.ErrUnauthenticated
	}
	id := s.ident
	return &id, nil
}

// Revalidate returns the identity of user if it is this verifier's user,
// and auth.ErrUnauthenticated otherwise: the Docker token service calls it
// to renew tokens from a refresh token without the password.
func (s *Static) Revalidate(_ context.Context, user string) (*auth.Identity, error) {
	u := sha256.Sum256([]byte(user))
	if subtle.ConstantTimeCompare(u[:], s.user[:]) != 1 {
		return nil, auth.ErrUnauthenticated
	}
	id := s.ident
	return &id, nil
}
