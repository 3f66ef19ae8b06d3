// Package auth decides who a request comes from and what it may do.
//
// Authentication and authorization are split: an [Authenticator] turns a
// request's credentials into an [Identity]; an [Authorizer] grants that
// identity a subset of the [Scope]s a request needs. The default is deny:
// an authorizer grants nothing it was not configured to grant, and the
// registry refuses any request whose scopes are not all granted.
//
// Subpackages provide the pieces a server wires together:
//
//   - auth/basic: HTTP Basic credentials (the bootstrap admin, registry
//     tokens);
//   - auth/bearer: Bearer tokens, verified by one or more token verifiers;
//   - auth/token: the Docker token service (a JWT issuer mounted at the
//     challenge realm) and the verifier of the JWTs it issues;
//   - auth/jwks: verification of JWTs from an external issuer (single sign-on)
//     against its JSON Web Key Set;
//   - auth/tokens: scoped registry tokens for people and CI, and their
//     management API;
//   - auth/throttle: failed-login throttling per client address and user;
//   - auth/signedurl: time-limited HMAC-signed URLs reading one manifest or
//     blob without other credentials, and the route minting them;
//   - auth/policy: the default Authorizer (admin, token scopes, public pull);
//   - auth/authtest: fakes and the conformance suites of authorizers and
//     bearer token verifiers.
//
// A server wires them like this (each piece is documented in its package):
//
//	toks, _ := tokens.New(reg, nil)
//	admin := basic.NewStatic("admin", password, auth.Identity{Admin: true})
//	limiter, _ := throttle.New(nil)
//	key, _ := token.LoadOrCreateKeyFile(filepath.Join(dataDir, "token-key.pem"))
//	svc, _ := token.NewService(key, limiter.Wrap(basic.New(admin, toks)), authz,
//		&token.Options{Service: "berth", Revalidator: token.Revalidators{admin, toks}})
//	authn := limiter.Wrap(auth.WithUploadSessions(
//		auth.ByScheme(basic.New(admin, toks), bearer.New(svc.Verifier())), lookup))
//	api, _ := tokens.NewAPI(toks, authn, authz, nil)
//
// where authz is policy.New(reg) and lookup reads upload sessions (see
// UploadSessionLookup). The throttle goes outermost, so that a request
// the upload grace admits does not count as a failure.
//
// # Scopes
//
// A scope names a resource type, a name and actions, as in the Docker token
// specification: "repository:team/app:pull,push", "registry:catalog:*".
// In the scopes an identity holds (a token's scopes), names are patterns
// matched by [Match]: path.Match syntax per '/'-separated segment, so "*"
// never crosses a '/' ("team/*" matches "team/app" but not
// "team/app/sub"), plus "**" as a whole segment, which matches any number
// of segments, none included ("team/**" matches "team", "team/app" and
// "team/app/sub"). The actions are "pull", "push", "delete" and "*" (all).
//
// # Errors
//
// Authenticators return errors matching [ErrUnauthenticated] for present
// but invalid credentials (the registry answers 401 with a challenge) and
// [ErrThrottled] (a [*ThrottledError]) while a client or user is throttled
// after repeated failures (the registry answers 429). Both carry the
// matching internal error code, Unauthenticated and ResourceExhausted.
//
// # Concurrency
//
// Every Authenticator and Authorizer in this package tree is safe for
// concurrent use.
//
// # Security
//
// The default is deny everywhere: no Authorizer grants anything it was not
// configured to grant, and an identity's Scopes bound what it may be
// granted. Secrets are compared in constant time and never logged or
// returned in errors. Expired credentials are refused, with one bounded
// exception for long pushes described at [WithUploadGrace].
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

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
	// Type is the resource type: "repository" or "registry".
	Type string
	// Name is the resource name: a repository name (a pattern, see
	// Match, in scopes an identity holds) or "catalog", "tokens".
	Name string
	// Actions are the actions requested or granted: "pull", "push",
	// "delete", "*", or the registry scopes' own.
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
type ScopeError struct {
	// Scope is the scope string as given.
	Scope string
	// Reason says what is wrong with it.
	Reason string
}

// Error names the scope (its first 100 bytes) and the reason.
func (e *ScopeError) Error() string {
	s := e.Scope
	if len(s) > 100 {
		s = strings.ToValidUTF8(s[:100], "") + "…"
	}
	return fmt.Sprintf("auth: invalid scope %q: %s", s, e.Reason)
}

// ParseScope parses "type:name:action[,action…]". The name may contain
// colons (a registry host with a port); the type and actions may not. The
// type is lower-case letters and '-'; the name may not contain spaces,
// control characters or invalid UTF-8; actions are lower-case letters,
// '-', '_' or "*". Duplicate actions are dropped.
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
	if strings.ContainsFunc(sc.Name, func(r rune) bool { return r <= ' ' || r == 0x7f || r == utf8.RuneError }) {
		return bad("space, control character or invalid UTF-8 in name")
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
	// what the identity's permissions allow. Names are [Match] patterns.
	Scopes []Scope
	// ExpiresAt is when the credentials expire; zero when they do not or
	// it is unknown.
	ExpiresAt time.Time
	// Grace is set when the credentials have expired and are honoured
	// only to finish an upload session (see [WithUploadGrace]); Scopes
	// are then restricted to that upload's repository.
	Grace bool
}

// Anonymous is the identity of requests without credentials.
var Anonymous = &Identity{}

// IsAnonymous reports whether id carries no credentials.
func (id *Identity) IsAnonymous() bool { return id == nil || id.Subject == "" }

// ErrUnauthenticated reports credentials that are present but invalid.
var ErrUnauthenticated error = &errcode.Error{Code: errcode.Unauthenticated, Msg: "auth: invalid credentials"}

// ErrThrottled reports a client or user refused without checking its
// credentials because of too many recent failures. Errors returned for it
// are *ThrottledError values, which match it with errors.Is and carry the
// ResourceExhausted code (HTTP 429).
var ErrThrottled error = &errcode.Error{Code: errcode.ResourceExhausted, Msg: "auth: too many failed attempts"}

// ThrottledError is the error of a throttled authentication attempt.
type ThrottledError struct {
	// RetryAfter is how long until the next attempt may be checked.
	RetryAfter time.Duration
}

// Error says how long to wait, never who was throttled.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("auth: too many failed attempts; retry in %s", e.RetryAfter.Round(time.Second))
}

// Unwrap returns ErrThrottled, so that errors.Is(err, ErrThrottled) holds
// and the error carries its code.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1,
// for a Retry-After header.
func (e *ThrottledError) RetryAfterSeconds() int {
	s := int((e.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}

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
