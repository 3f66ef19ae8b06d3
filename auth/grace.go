package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
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
// credential is accepted. [WithUploadSessions] makes the call for the
// registry, from the session's stored record.
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

// UploadSessionLookup returns the repository and start time of the upload
// session id, or an error when there is none. With a *storage.Store:
//
//	func(ctx context.Context, id string) (string, time.Time, error) {
//		u, err := store.ResumeUpload(ctx, id)
//		if err != nil {
//			return "", time.Time{}, err
//		}
//		return u.Labels()["repository"], u.StartedAt(), nil
//	}
type UploadSessionLookup func(ctx context.Context, id string) (repository string, startedAt time.Time, err error)

// WithUploadSessions returns an Authenticator that gives credentials the
// upload grace (see WithUploadGrace) without changes to the registry: when
// a refuses the credentials of a request that continues an upload session
// (GET, PATCH, PUT or DELETE on /v2/<name>/blobs/uploads/<id>), it looks
// the session up and, if it belongs to <name>, asks a again with the
// request's context marked by WithUploadGrace. Other requests, and valid
// credentials, cost nothing extra. Put it inside a throttle
// (throttle.Limiter.Wrap), so that admitted requests do not count as
// failures.
func WithUploadSessions(a Authenticator, lookup UploadSessionLookup) Authenticator {
	return AuthenticatorFunc(func(r *http.Request) (*Identity, error) {
		id, err := a.Authenticate(r)
		if err == nil || !errors.Is(err, ErrUnauthenticated) || lookup == nil {
			return id, err
		}
		name, session, ok := uploadPath(r)
		if !ok {
			return id, err
		}
		repo, started, lerr := lookup(r.Context(), session)
		if lerr != nil || repo != name || started.IsZero() {
			return id, err
		}
		r2 := r.WithContext(WithUploadGrace(r.Context(), name, started))
		return a.Authenticate(r2)
	})
}

// uploadPath reports whether r continues an upload session, and its
// repository name and session ID.
func uploadPath(r *http.Request) (name, id string, ok bool) {
	switch r.Method {
	case http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete:
	default:
		return "", "", false
	}
	rest, found := strings.CutPrefix(r.URL.Path, "/v2/")
	if !found {
		return "", "", false
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	if n < 4 || segs[n-3] != "blobs" || segs[n-2] != "uploads" || segs[n-1] == "" {
		return "", "", false
	}
	return strings.Join(segs[:n-3], "/"), segs[n-1], true
}
