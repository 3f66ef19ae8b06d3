// Package policy is Berth's default Authorizer: administrators may do
// everything; scoped tokens may do what their scopes allow; anyone,
// including anonymous callers, may pull from public repositories; and
// nothing else is granted.
package policy

import (
	"context"
	"errors"
	"path"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/storage/driver"
)

// RepositoryLookup returns a repository's record, or an error matching
// driver.ErrNotFound when it does not exist. driver.Repositories satisfies
// it.
type RepositoryLookup interface {
	GetRepository(ctx context.Context, name string) (*driver.Repository, error)
}

// Authorizer implements auth.Authorizer with the default policy.
type Authorizer struct {
	repos RepositoryLookup
}

// New returns the default authorizer, reading repository visibility from
// repos.
func New(repos RepositoryLookup) *Authorizer { return &Authorizer{repos: repos} }

var _ auth.Authorizer = (*Authorizer)(nil)

// Authorize implements auth.Authorizer.
func (a *Authorizer) Authorize(ctx context.Context, id *auth.Identity, requested []auth.Scope) ([]auth.Scope, error) {
	out := make([]auth.Scope, 0, len(requested))
	for _, want := range requested {
		got := auth.Scope{Type: want.Type, Name: want.Name}
		for _, action := range want.Actions {
			ok, err := a.allows(ctx, id, want.Type, want.Name, action)
			if err != nil {
				return nil, err
			}
			if ok {
				got.Actions = append(got.Actions, action)
			}
		}
		out = append(out, got)
	}
	return out, nil
}

func (a *Authorizer) allows(ctx context.Context, id *auth.Identity, typ, name, action string) (bool, error) {
	if id != nil && id.Admin && id.Scopes == nil {
		return true, nil
	}
	if id != nil && tokenAllows(id.Scopes, typ, name, action) {
		return true, nil
	}
	if typ == auth.TypeRepository && action == auth.Pull {
		r, err := a.repos.GetRepository(ctx, name)
		if errors.Is(err, driver.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return r.Visibility == driver.Public, nil
	}
	return false, nil
}

// tokenAllows reports whether a token's scopes cover the action. Scope
// names are path.Match patterns ("team/*").
func tokenAllows(scopes []auth.Scope, typ, name, action string) bool {
	for _, s := range scopes {
		if s.Type != typ || !s.Allows(action) {
			continue
		}
		if ok, err := path.Match(s.Name, name); err == nil && ok {
			return true
		}
	}
	return false
}
