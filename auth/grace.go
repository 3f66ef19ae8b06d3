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
	// StartedBy is the subject of the identity that started the session;
	// when set, verifiers grant the grace only to credentials of that
	// subject (see [UploadGrace.HeldBy]). [WithUploadSessions] always sets
	// it.
	StartedBy string
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
// credential is accepted. The caller vouches that the session was started
// by the credentials' subject. [WithUploadSessions] makes the call for the
// registry, from the session's stored record, and also names the subject
// that started the session, so that credentials of any other subject get
// no grace.
func WithUploadGrace(ctx context.Context, repository string, startedAt time.Time) context.Context {
	return withGrace(ctx, UploadGrace{Repository: repository, StartedAt: startedAt})
}

func withGrace(ctx context.Context, g UploadGrace) context.Context {
	return context.WithValue(ctx, uploadGraceKey{}, g)
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

// HeldBy reports whether credentials of subject may have the grace on
// this session: true when the session's starter is unknown to g (the
// caller of [WithUploadGrace] vouched for it) or is subject. Verifiers
// check it together with [UploadGrace.Allows].
func (g UploadGrace) HeldBy(subject string) bool {
	return g.StartedBy == "" || (subject != "" && g.StartedBy == subject)
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

// UploadSession is what [WithUploadSessions] needs to know of an upload
// session: its repository, who started it and when.
type UploadSession struct {
	// Repository is the repository the session belongs to.
	Repository string
	// StartedBy is the subject of the identity that started the session;
	// a session without one gets no grace.
	StartedBy string
	// StartedAt is when the session started.
	StartedAt time.Time
}

// UploadSessionLookup returns the upload session id, or an error when
// there is none. With a *storage.Store and the labels the registry
// package stores with its sessions:
//
//	func(ctx context.Context, id string) (auth.UploadSession, error) {
//		u, err := store.ResumeUpload(ctx, id)
//		if err != nil {
//			return auth.UploadSession{}, err
//		}
//		l := u.Labels()
//		return auth.UploadSession{
//			Repository: l[registry.UploadRepositoryLabel],
//			StartedBy:  l[registry.UploadSubjectLabel],
//			StartedAt:  u.StartedAt(),
//		}, nil
//	}
type UploadSessionLookup func(ctx context.Context, id string) (UploadSession, error)

// WithUploadSessions returns an Authenticator that gives credentials the
// upload grace (see WithUploadGrace) without changes to the registry: when
// a refuses the credentials of a request that continues an upload session
// (GET, PATCH, PUT or DELETE on /v2/<name>/blobs/uploads/<id>), it looks
// the session up and, if it belongs to <name>, asks a again with the
// request's context marked by WithUploadGrace and the session's starter.
// The grace is granted only when the identity a returns then has the
// subject that started the session: an expired token cannot finish an
// upload that another identity started, and a session whose starter is
// not recorded gets no grace. Other requests, and valid credentials, cost
// nothing extra. Put it inside a throttle
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
		s, lerr := lookup(r.Context(), session)
		if lerr != nil || s.Repository != name || s.StartedAt.IsZero() || s.StartedBy == "" {
			return id, err
		}
		r2 := r.WithContext(withGrace(r.Context(), UploadGrace{Repository: name, StartedAt: s.StartedAt, StartedBy: s.StartedBy}))
		gid, gerr := a.Authenticate(r2)
		if gerr != nil {
			return gid, gerr
		}
		if gid == nil || gid.Subject != s.StartedBy {
			return id, err
		}
		return gid, nil
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
