package events

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/auth"
)

// DecisionPartial marks requests granted only some of the access they
// asked for: a token service issuing a token with fewer scopes than
// requested, a catalog listing only what the caller may see.
const DecisionPartial = "partial"

// ObserveAuthenticator returns a wrapped so that the identity of every
// request it authenticates is recorded in the request's Record (see
// RecordFromContext), whatever the scheme: HTTP Basic, a Bearer JWT, a
// registry token. Anonymous requests are recorded as "anonymous";
// requests whose credentials fail are left without an identity (the name
// they claim is not trusted).
//
// When rl is not nil, each authenticated identity is also charged to its
// rate limit, once per request however often the request is
// authenticated: the identity's own limit (auth.Identity.RateLimit, as
// stored with its registry token) when it has one and the Limiter
// implements LimitAllower, the Limiter's limit for IdentityKey otherwise.
// Over it, Authenticate returns an *auth.ThrottledError carrying how
// long to wait, which the registry, the token service and the tokens API
// answer with 429 Too Many Requests and Retry-After.
//
// Wrapping an authenticator this function returned, with a nil rl,
// returns it unchanged.
func ObserveAuthenticator(a auth.Authenticator, rl *RateLimit) auth.Authenticator {
	if o, ok := a.(*observedAuthenticator); ok && rl == nil {
		return o
	}
	if a == nil {
		return nil
	}
	return &observedAuthenticator{a: a, rl: rl}
}

type observedAuthenticator struct {
	a  auth.Authenticator
	rl *RateLimit
}

// Authenticate implements auth.Authenticator.
func (o *observedAuthenticator) Authenticate(r *http.Request) (*auth.Identity, error) {
	id, err := o.a.Authenticate(r)
	if err != nil {
		return id, err
	}
	rec := RecordFromContext(r.Context())
	if rec != nil {
		if id.IsAnonymous() {
			rec.identity = "anonymous"
		} else {
			rec.identity = id.Subject
		}
	}
	if o.rl == nil || id.IsAnonymous() || (rec != nil && rec.charged) {
		return id, nil
	}
	if rec != nil {
		rec.charged = true
	}
	ok, wait, err := o.rl.checkIdentity(r, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		if rec != nil {
			rec.decision = DecisionRateLimited
		}
		return nil, &auth.ThrottledError{RetryAfter: wait}
	}
	return id, nil
}

// ObserveAuthorizer returns z wrapped so that the request's Record holds
// the authorization decision: the outcome of the first authorization of
// the request (later ones, such as the registry's check of a mount source
// it can do without, do not change it), DecisionAllow when everything
// asked for was granted, DecisionPartial when some of it was,
// DecisionDeny when none was. The access log replaces it with the
// decision a 401, 403 or 429 response states.
//
// Wrapping an authorizer this function returned returns it unchanged.
func ObserveAuthorizer(z auth.Authorizer) auth.Authorizer {
	if o, ok := z.(observedAuthorizer); ok {
		return o
	}
	if z == nil {
		return nil
	}
	return observedAuthorizer{z}
}

type observedAuthorizer struct{ z auth.Authorizer }

// Authorize implements auth.Authorizer.
func (o observedAuthorizer) Authorize(ctx context.Context, id *auth.Identity, want []auth.Scope) ([]auth.Scope, error) {
	granted, err := o.z.Authorize(ctx, id, want)
	if err != nil {
		return granted, err
	}
	if rec := RecordFromContext(ctx); rec != nil && rec.decision == "" {
		rec.decision = decide(granted, want)
	}
	return granted, nil
}

// decide compares what was granted with what was asked for.
func decide(granted, want []auth.Scope) string {
	asked, got := 0, 0
	for _, w := range want {
		for _, a := range w.Actions {
			asked++
			if auth.Granted(granted, w.Type, w.Name, a) {
				got++
			}
		}
	}
	switch {
	case got == asked:
		return DecisionAllow
	case got == 0:
		return DecisionDeny
	}
	return DecisionPartial
}
