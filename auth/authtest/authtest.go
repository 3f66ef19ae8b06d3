// Package authtest holds fakes of the auth interfaces for users' tests.
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

// Users is an Authenticator over fixed HTTP Basic credentials: user name
// to password. Users named in Admins get auth.Identity.Admin.
type Users struct {
	Passwords map[string]string
	Admins    []string
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
