// Package auth decides who a request comes from and what it may do.
//
// Authentication and authorization are split: an [Authenticator] turns a
// request's credentials into an [Identity]; an [Authorizer] grants that
// identity a subset of the [Scope]s a request needs. The default is deny:
// an authorizer grants nothing it was not configured to grant, and the
// registry refuses any request whose scopes are not all granted.
//
// # Security
//
// Secrets are compared in constant time and never logged or returned in
// errors.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errcode"
)

// Actions on repositories and the registry.
const (
	Pull   = "pull"
	Push   = "push"
	Delete = "delete"
	// All stands for every action ("*").
	All = "*"
)

// Scope types.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"
)

// Scope is a resource and the actions requested or granted on it, as in
// the Docker token specification: "repository:team/app:pull,push" or
// "registry:catalog:*".
type Scope struct {
	Type    string
	Name    string
	Actions []string
}

// String formats the scope as the token specification does.
func (s Scope) String() string {
	return s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// Allows reports whether the scope includes action.
func (s Scope) Allows(action string) bool {
	return slices.Contains(s.Actions, action) || slices.Contains(s.Actions, All)
}

// ScopeError reports a malformed scope string.
type ScopeError struct{ Scope, Reason string }

func (e *ScopeError) Error() string {
	s := e.Scope
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return fmt.Sprintf("auth: invalid scope %q: %s", s, e.Reason)
}

// ParseScope parses "type:name:action[,action…]". The name may contain
// colons (a registry host with a port); the type and actions may not.
func ParseScope(s string) (Scope, error) {
	bad := func(r string) (Scope, error) { return Scope{}, &ScopeError{Scope: s, Reason: r} }
	i := strings.IndexByte(s, ':')
	j := strings.LastIndexByte(s, ':')
	if i < 0 || i == j {
		return bad(`want "type:name:actions"`)
	}
	sc := Scope{Type: s[:i], Name: s[i+1 : j]}
	if sc.Type == "" || sc.Name == "" {
		return bad("empty type or name")
	}
	for _, c := range sc.Type {
		if !('a' <= c && c <= 'z' || c == '-') {
			return bad("invalid type")
		}
	}
	for _, a := range strings.Split(s[j+1:], ",") {
		if a == "" {
			return bad("empty action")
		}
		for _, c := range a {
			if !('a' <= c && c <= 'z' || c == '*' || c == '-' || c == '_') {
				return bad("invalid action")
			}
		}
		if !slices.Contains(sc.Actions, a) {
			sc.Actions = append(sc.Actions, a)
		}
	}
	return sc, nil
}

// Identity is who a request comes from.
type Identity struct {
	// Subject is the user or token name; empty for anonymous requests.
	Subject string
	// Admin identities may do everything.
	Admin bool
	// Scopes, when not nil, bound what the identity may be granted (a
	// scoped token): the authorizer grants only their intersection with
	// what the identity's permissions allow.
	Scopes []Scope
}

// Anonymous is the identity of requests without credentials.
var Anonymous = &Identity{}

// IsAnonymous reports whether id carries no credentials.
func (id *Identity) IsAnonymous() bool { return id == nil || id.Subject == "" }

// ErrUnauthenticated reports credentials that are present but invalid.
var ErrUnauthenticated error = &errcode.Error{Code: errcode.Unauthenticated, Msg: "auth: invalid credentials"}

// Authenticator identifies the sender of a request.
type Authenticator interface {
	// Authenticate returns the request's identity: Anonymous when it
	// carries no credentials, an error matching ErrUnauthenticated when
	// its credentials are invalid. It must not retain r.
	Authenticate(r *http.Request) (*Identity, error)
}

// Authorizer decides what an identity may do. Implementations are safe
// for concurrent use.
type Authorizer interface {
	// Authorize returns the scopes, among requested, that id is granted,
	// each with only the granted actions (possibly none). It never grants
	// more than was requested. An error means no decision could be made
	// (for example the metadata backend is down): callers deny.
	Authorize(ctx context.Context, id *Identity, requested []Scope) ([]Scope, error)
}

// Granted reports whether granted includes action on the resource.
func Granted(granted []Scope, typ, name, action string) bool {
	for _, g := range granted {
		if g.Type == typ && g.Name == name && g.Allows(action) {
			return true
		}
	}
	return false
}

// ErrNoCredentials is returned by helpers when a request has no
// credentials of the kind they look for.
var ErrNoCredentials = errors.New("auth: no credentials")
