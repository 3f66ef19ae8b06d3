package auth

import (
	"context"
	"slices"
	"time"
)

// DefaultUploadGrace is the grace window verifiers use when their options
// leave it zero: how long past expiry credentials may still finish an
// upload session they started.
const DefaultUploadGrace = time.Hour

// UploadGrace describes the upload session a request continues.
type UploadGrace struct {
	// Repository is the repository the upload session belongs to.
	Repository string
	// StartedAt is when the session started.
	StartedAt time.Time
}

type uploadGraceKey struct{}

// WithUploadGrace returns a copy of ctx saying that the request continues
// (PATCH, PUT, GET status) the upload session to repository that started
// at startedAt. The registry calls it before authenticating such a
// request, with the session's own record, never with values taken from
// the request.
//
// Credentials normally expire at once; a push of a large layer may outlast
// a short-lived token. Verifiers that honour the grace (auth/token's
// Verifier and auth/tokens' Manager) accept credentials that expired at
// most their grace window ago (DefaultUploadGrace unless configured) when
// the credentials were already valid when the session started and had not
// expired then. The resulting Identity has Grace set and its Scopes
// restricted, by [UploadGrace.Restrict], to pull and push on that one
// repository. Revoked credentials are never honoured.
//
// # Security
//
// The trade-off is that a leaked expired token can still complete, for up
// to the grace window, an upload that its holder started while it was
// valid: upload session IDs are unguessable and bound to a repository, and
// nothing else (no manifest push outside the repository, no pull of other
// repositories, no delete) is granted. Without this call no expired
// credential is accepted.
func WithUploadGrace(ctx context.Context, repository string, startedAt time.Time) context.Context {
	return context.WithValue(ctx, uploadGraceKey{}, UploadGrace{Repository: repository, StartedAt: startedAt})
}

// UploadGraceFrom returns the upload session set by WithUploadGrace.
func UploadGraceFrom(ctx context.Context) (UploadGrace, bool) {
	g, ok := ctx.Value(uploadGraceKey{}).(UploadGrace)
	return g, ok && g.Repository != ""
}

// Allows reports whether credentials valid from issuedAt (zero: unknown)
// until expiresAt may finish this upload session at now, given the grace
// window.
func (g UploadGrace) Allows(issuedAt, expiresAt, now time.Time, window time.Duration) bool {
	if window <= 0 || expiresAt.IsZero() || g.StartedAt.IsZero() {
		return false
	}
	if !issuedAt.IsZero() && g.StartedAt.Before(issuedAt) {
		return false
	}
	return !g.StartedAt.After(expiresAt) && !now.After(expiresAt.Add(window))
}

// Restrict returns the part of scopes that finishing the upload needs:
// the pull and push actions they hold on the session's repository, as one
// literal scope, or an empty (non-nil) slice.
func (g UploadGrace) Restrict(scopes []Scope) []Scope {
	out := []Scope{}
	var actions []string
	for _, a := range []string{Pull, Push} {
		if Covers(scopes, TypeRepository, g.Repository, a) {
			actions = append(actions, a)
		}
	}
	if len(actions) > 0 {
		out = append(out, Scope{Type: TypeRepository, Name: g.Repository, Actions: slices.Clip(actions)})
	}
	return out
}
