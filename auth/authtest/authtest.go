// Package authtest holds fakes of the auth interfaces for users' tests and
// the conformance suite every auth.Authorizer should pass.
//
// # Fakes
//
// [AllowAll] grants everything; [Static] is an in-memory policy with the
// same rules as auth/policy over a fixed list of public repositories and
// fixed grants per subject; [Users] authenticates fixed HTTP Basic
// credentials and [Tokens] fixed bearer tokens.
//
// # Conformance
//
// [RunAuthorizerTests] checks default deny, public-pull-only, scope
// pattern semantics (auth.Match), admin and scoped identities, and that no
// more is granted than was requested. policy.Authorizer and Static pass it.
//
// # Security
//
// AllowAll and Users are for tests only: AllowAll grants everything and
// Users keeps passwords in plain text.
package authtest

import (
	"context"
	"crypto/subtle"
	"net/http"
	"slices"

	"github.com/berth-dev/berth/auth"
)

// AllowAll is an Authorizer that grants every requested scope.
type AllowAll struct{}

// Authorize implements auth.Authorizer.
func (AllowAll) Authorize(_ context.Context, _ *auth.Identity, requested []auth.Scope) ([]auth.Scope, error) {
	return slices.Clone(requested), nil
}

// Static is an Authorizer with a fixed policy and the rules of
// auth/policy: an admin without Scopes may do everything; an identity's
// Scopes grant what they cover; Grants[subject] grants what it covers to
// identities of that subject that hold no Scopes (the key "" is anonymous
// callers); and anyone may pull repositories whose names match a Public
// pattern. Nothing else is granted. The zero value denies everything but
// what identities' own Scopes and admin status allow.
//
// Static must not be modified while in use; it is then safe for
// concurrent use.
type Static struct {
	// Public are name patterns (auth.Match) of public repositories.
	Public []string
	// Grants are the scopes granted to each subject.
	Grants map[string][]auth.Scope
}

var _ auth.Authorizer = (*Static)(nil)

// Authorize implements auth.Authorizer.
func (s *Static) Authorize(ctx context.Context, id *auth.Identity, requested []auth.Scope) ([]auth.Scope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if id == nil {
		id = auth.Anonymous
	}
	out := make([]auth.Scope, 0, len(requested))
	for _, want := range requested {
		got := auth.Scope{Type: want.Type, Name: want.Name}
		for _, a := range want.Actions {
			if s.allows(id, want.Type, want.Name, a) {
				got.Actions = append(got.Actions, a)
			}
		}
		out = append(out, got)
	}
	return out, nil
}

func (s *Static) allows(id *auth.Identity, typ, name, action string) bool {
	switch {
	case id.Admin && id.Scopes == nil:
		return true
	case auth.Covers(id.Scopes, typ, name, action):
		return true
	case id.Scopes == nil && auth.Covers(s.Grants[id.Subject], typ, name, action):
		return true
	case typ == auth.TypeRepository && action == auth.Pull && !auth.IsPattern(name):
		return slices.ContainsFunc(s.Public, func(p string) bool { return auth.Match(p, name) })
	}
	return false
}

// Users is an Authenticator over fixed HTTP Basic credentials: user name
// to password. Users named in Admins get auth.Identity.Admin.
type Users struct {
	// Passwords maps user names to passwords, kept in plain text.
	Passwords map[string]string
	// Admins are the users that are administrators.
	Admins []string
}

// Authenticate implements auth.Authenticator.
func (u Users) Authenticate(r *http.Request) (*auth.Identity, error) {
	name, pw, ok := r.BasicAuth()
	if !ok {
		return auth.Anonymous, nil
	}
	want, known := u.Passwords[name]
	if !known || subtle.ConstantTimeCompare([]byte(pw), []byte(want)) != 1 {
		return nil, auth.ErrUnauthenticated
	}
	return &auth.Identity{Subject: name, Admin: slices.Contains(u.Admins, name)}, nil
}

// Tokens is a fake of bearer tokens: it maps token strings to identities.
// It is a bearer.Verifier and an auth.Authenticator of Bearer headers (no
// header is anonymous; an unknown token or another scheme is
// auth.ErrUnauthenticated). Tokens must not be modified while in use.
type Tokens map[string]*auth.Identity

// VerifyToken implements bearer.Verifier.
func (ts Tokens) VerifyToken(_ context.Context, tok string) (*auth.Identity, error) {
	id, ok := ts[tok]
	if !ok || tok == "" {
		return nil, auth.ErrUnauthenticated
	}
	c := *id
	c.Scopes = slices.Clone(id.Scopes)
	return &c, nil
}

// Authenticate implements auth.Authenticator.
func (ts Tokens) Authenticate(r *http.Request) (*auth.Identity, error) {
	if r.Header.Get("Authorization") == "" {
		return auth.Anonymous, nil
	}
	tok, err := auth.BearerToken(r)
	if err != nil {
		return nil, auth.ErrUnauthenticated
	}
	return ts.VerifyToken(r.Context(), tok)
}
