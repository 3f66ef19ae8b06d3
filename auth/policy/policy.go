// Package policy is Berth's default Authorizer: administrators may do
// everything; scoped tokens may do what their scopes allow; anyone,
// including anonymous callers, may pull from public repositories; and
// nothing else is granted.
//
// # Rules
//
// For each requested action on a resource, Authorize grants it when
//
//   - the identity is an administrator without Scopes (Admin set and
//     Scopes nil: the bootstrap admin); an administrator holding Scopes is
//     bound by them like any token;
//   - one of the identity's Scopes has the resource's type, the action (or
//     "*") and a name pattern matching the resource's name by auth.Match
//     ("team/*" covers "team/app", not "team/app/x"; "team/**" covers both);
//   - the action is pull on a repository whose visibility is public.
//
// Nothing else is granted: a missing repository is treated exactly like a
// private one, so callers learn nothing about which names exist. Registry
// scopes ("registry:catalog:*", "registry:tokens:…") are granted only by
// the first two rules.
//
// # Errors
//
// Authorize fails only when the repository lookup fails for another reason
// than the repository not existing; callers then deny.
//
// # Concurrency
//
// An Authorizer is safe for concurrent use if its RepositoryLookup is.
//
// # Security
//
// Default deny, least privilege: the set of grants is the union of the
// three rules above and never exceeds the request.
package policy

import (
	"context"
	"errors"

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
// repos. A nil repos treats every repository as private.
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
	if id != nil && auth.Covers(id.Scopes, typ, name, action) {
		return true, nil
	}
	if typ == auth.TypeRepository && action == auth.Pull && a.repos != nil && !auth.IsPattern(name) {
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
