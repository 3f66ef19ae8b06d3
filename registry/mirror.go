package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Mirror serves repositories whose content comes from upstream
// registries: a pull-through cache (see registry/pullthrough). The handler
// consults it only for repositories it mirrors, after authorizing the
// request as for any repository (pull for reads), and keeps those
// repositories read-only for clients: pushes, uploads and mounts into them
// are answered 405 UNSUPPORTED. Deletes stay allowed to callers with the
// delete action; they evict cached content, which the next pull fetches
// again.
//
// Errors: an *UpstreamError is passed through to the client (status and
// specification error); other errors are classified as storage errors.
// Implementations must be safe for concurrent use.
type Mirror interface {
	// Mirrors reports whether repo's content comes from an upstream. It
	// must be cheap: the handler calls it on every request naming a
	// repository.
	Mirrors(repo string) bool
	// Manifest returns the record of the manifest that reference (a tag
	// or a digest) names in repo, with its bytes stored in the store the
	// handler serves, fetching it from the upstream when the repository
	// does not hold it or when the tag is due for revalidation. It
	// returns an error matching storage.ErrNotFound, or an
	// *UpstreamError, when there is no such manifest.
	Manifest(ctx context.Context, repo, reference string) (*driver.Manifest, error)
	// OpenBlob is called when repo does not hold blob d. It returns a
	// reader of the blob's whole content and its size (-1 when the
	// upstream does not say), fetching it from the upstream and storing it
	// as it is read. The reader's final Read returns io.EOF only once the
	// content matched d and was stored; until then at least its last byte
	// is held back, so a client never receives unverified content in
	// full. The caller must Close the reader, whether or not it read it to
	// the end. OpenBlob returns an error matching storage.ErrNotFound, or
	// an *UpstreamError, when there is no such blob.
	OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error)
}

// UpstreamError is an error answer from an upstream registry, or the
// upstream's failure to answer, that a Mirror passes through to the
// client: the handler answers with StatusCode and a specification error
// body of Code, Message and Detail.
type UpstreamError struct {
	// StatusCode is the HTTP status to answer with: the upstream's own
	// for a 4xx answer; 502 or 504 when the upstream failed or could not
	// be reached.
	StatusCode int
	// Code is the specification error code (MANIFEST_UNKNOWN, DENIED, …).
	Code string
	// Message is the error message, shown to the client.
	Message string
	// Detail is the specification error's detail, optional.
	Detail any
	// RetryAfter is the upstream's Retry-After header, for 429 and 503.
	RetryAfter string
	// Err is the underlying cause, logged and never sent.
	Err error
}

func (e *UpstreamError) Error() string {
	s := fmt.Sprintf("upstream registry: %d %s: %s", e.StatusCode, e.Code, e.Message)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *UpstreamError) Unwrap() error { return e.Err }

// ErrorCode classifies the error by its status.
func (e *UpstreamError) ErrorCode() errcode.Code {
	switch e.StatusCode {
	case http.StatusNotFound:
		return errcode.NotFound
	case http.StatusUnauthorized:
		return errcode.Unauthenticated
	case http.StatusForbidden:
		return errcode.PermissionDenied
	case http.StatusTooManyRequests:
		return errcode.ResourceExhausted
	}
	return errcode.Unknown
}

// response is the error's answer. A 401 gets this registry's challenge:
// the upstream's would send the client to the upstream's token service.
func (h *Handler) upstreamResponse(q *request, name string, e *UpstreamError) *regError {
	code := e.Code
	if code == "" {
		code = codeUnknown
	}
	re := &regError{Status: e.StatusCode, Code: code, Message: e.Message, Detail: e.Detail, cause: e}
	if e.StatusCode == http.StatusUnauthorized {
		ch := h.challenge([]auth.Scope{{Type: auth.TypeRepository, Name: name, Actions: []string{auth.Pull}}})
		re.Header = ch.Header
	}
	if e.RetryAfter != "" {
		re = re.with("Retry-After", e.RetryAfter)
	}
	return re
}

// mirrors reports whether name is a mirrored repository.
func (h *Handler) mirrors(name string) bool {
	return h.opts.Mirror != nil && name != "" && h.opts.Mirror.Mirrors(name)
}

// readOnlyMirror refuses writes into a mirrored repository.
func (h *Handler) readOnlyMirror(rt route, method string) error {
	if !h.mirrors(rt.name) {
		return nil
	}
	write := false
	switch rt.kind {
	case "manifest":
		write = method == http.MethodPut
	case "uploads", "upload":
		write = method != http.MethodGet && method != http.MethodHead && method != http.MethodDelete
	}
	if !write {
		return nil
	}
	return newErr(http.StatusMethodNotAllowed, codeUnsupported, "repository "+rt.name+" is a read-only cache of an upstream registry")
}

// resolveMaybeMirrored finds the manifest a reference names, through the
// mirror for mirrored repositories.
func (h *Handler) resolveMaybeMirrored(q *request, name, ref string) (*driver.Manifest, error) {
	if !h.mirrors(name) {
		return h.store.ResolveManifest(q.r.Context(), name, ref)
	}
	m, err := h.opts.Mirror.Manifest(q.r.Context(), name, ref)
	var ue *UpstreamError
	if errors.As(err, &ue) {
		return nil, h.upstreamResponse(q, name, ue)
	}
	return m, err
}

// mirrorBlob serves a blob that a mirrored repository does not hold yet,
// streaming it from the upstream while it is stored. A Range header is
// ignored (RFC 9110 allows it): the whole blob is sent with 200; once
// stored, later requests get ranges.
func (h *Handler) mirrorBlob(q *request, name string, d digest.Digest) error {
	ctx := q.r.Context()
	rd, size, err := h.opts.Mirror.OpenBlob(ctx, name, d)
	var ue *UpstreamError
	if errors.As(err, &ue) {
		return h.upstreamResponse(q, name, ue)
	}
	if err != nil {
		return classify(err, codeBlobUnknown)
	}
	defer rd.Close()
	hd := q.w.Header()
	hd.Set("Docker-Content-Digest", string(d))
	hd.Set("ETag", `"`+string(d)+`"`)
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Cache-Control", "max-age=31536000")
	if size >= 0 {
		hd.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	q.w.WriteHeader(http.StatusOK)
	if q.r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(q.w, rd); err != nil && ctx.Err() == nil {
		// Headers are sent: abort the connection so that the client
		// cannot mistake a short or unverified body for the blob.
		h.opts.Logger.Error("registry: mirrored blob failed mid-stream", "repository", name, "digest", d, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// isStoreNotFound reports a storage "not found" error.
func isStoreNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
