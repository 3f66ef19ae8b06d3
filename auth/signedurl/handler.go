package signedurl

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Routes of the management API the Handler serves.
const (
	// RoutePrefix starts every path the Handler serves.
	RoutePrefix = "/api/v1/repositories/"
	// RouteSuffix ends it: POST /api/v1/repositories/{name}/signed-urls.
	RouteSuffix = "/signed-urls"
	// DefaultExpiresIn is the lifetime of a URL whose request names none.
	DefaultExpiresIn = 15 * time.Minute
	// maxBody bounds request bodies.
	maxBody = 4 << 10
)

// Lookup reads what the Handler needs to know about a repository's
// content. driver.Registry implements it.
type Lookup interface {
	// GetTag returns the tag, or an error matching driver.ErrNotFound.
	GetTag(ctx context.Context, repo, name string) (*driver.Tag, error)
	// GetManifest returns the manifest, or driver.ErrNotFound.
	GetManifest(ctx context.Context, repo string, d digest.Digest) (*driver.Manifest, error)
	// BlobLinked reports whether blob d is visible through repo.
	BlobLinked(ctx context.Context, repo string, d digest.Digest) (bool, error)
}

// AuthorizeFunc decides whether the request may mint URLs reading repo:
// it must hold pull there. It returns the caller's identity to allow; its
// ExpiresAt, when set, caps the URL's expiry, so that a URL never outlives
// the credentials that minted it. An error whose internal error code is
// Unauthenticated is answered 401, NotFound 404, Internal 500, and any
// other error 403. Anonymous callers should be refused (Unauthenticated):
// the Handler refuses them itself when the identity is anonymous.
type AuthorizeFunc func(r *http.Request, repo string) (*auth.Identity, error)

// HandlerOptions configures a Handler. A nil *HandlerOptions is the zero
// value, and the zero value of every field is safe.
type HandlerOptions struct {
	// BaseURL is the registry's external URL ("https://registry.example"),
	// joined to the signed path in responses. Default: the scheme and
	// Host of the request itself.
	BaseURL string
	// Logger receives server errors. Default slog.Default().
	Logger *slog.Logger
	// Realm is the realm of the Basic challenge (WWW-Authenticate) sent
	// with 401 answers. Default "berth", as the other management routes.
	Realm string
}

func (o *HandlerOptions) validate() error {
	if b := o.BaseURL; b != "" && !strings.HasPrefix(b, "https://") && !strings.HasPrefix(b, "http://") {
		return errors.New("signedurl: HandlerOptions.BaseURL must be an http(s) URL")
	}
	if strings.ContainsAny(o.Realm, "\"\\\r\n") {
		return errors.New("signedurl: HandlerOptions.Realm may not contain quotes, backslashes or line breaks")
	}
	return nil
}

// Handler serves the route minting signed URLs:
//
//	POST /api/v1/repositories/{name}/signed-urls
//
// with a JSON body naming a manifest by tag or digest ({"reference":…})
// or a blob by digest ({"digest":…}), and optionally "expiresIn" (a Go
// duration such as "15m", default DefaultExpiresIn, at most the Signer's
// MaxTTL). It answers 201 with a [CreatedURL]. The content must exist in
// the repository (404 MANIFEST_UNKNOWN or BLOB_UNKNOWN otherwise); a tag
// is resolved to its digest now. Errors are JSON bodies
// {"errors":[{"code","message"}]}: 400 BODY_INVALID, NAME_INVALID,
// TAG_INVALID, DIGEST_INVALID or EXPIRY_INVALID; 401 UNAUTHORIZED (with
// a Basic challenge); 403 DENIED; 404 NAME_UNKNOWN, MANIFEST_UNKNOWN or
// BLOB_UNKNOWN; 405 UNSUPPORTED (with Allow); 413 SIZE_INVALID; 415
// BODY_INVALID for a Content-Type other than application/json.
type Handler struct {
	signer    *Signer
	meta      Lookup
	authorize AuthorizeFunc
	opts      HandlerOptions
}

// NewHandler returns the handler minting URLs with s for content found in
// meta. authorize is required: every request goes through it first.
func NewHandler(s *Signer, meta Lookup, authorize AuthorizeFunc, opts *HandlerOptions) (*Handler, error) {
	if s == nil || meta == nil || authorize == nil {
		return nil, errors.New("signedurl: NewHandler needs a Signer, a Lookup and an AuthorizeFunc")
	}
	h := &Handler{signer: s, meta: meta, authorize: authorize}
	if opts != nil {
		h.opts = *opts
	}
	if err := h.opts.validate(); err != nil {
		return nil, err
	}
	if h.opts.Realm == "" {
		h.opts.Realm = "berth"
	}
	h.opts.BaseURL = strings.TrimSuffix(h.opts.BaseURL, "/")
	if h.opts.Logger == nil {
		h.opts.Logger = slog.Default()
	}
	return h, nil
}

// Match reports whether the request is for the Handler's route.
func Match(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, RoutePrefix) && strings.HasSuffix(r.URL.Path, RouteSuffix)
}

// Wrap returns a handler serving the Handler's route with h and every
// other request with next.
func (h *Handler) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Match(r) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// CreateRequest is the body of a request minting a URL. Exactly one of
// Reference and Digest is set.
type CreateRequest struct {
	// Reference names a manifest by tag or digest.
	Reference string `json:"reference,omitempty"`
	// Digest names a blob.
	Digest string `json:"digest,omitempty"`
	// ExpiresIn is the URL's lifetime, a Go duration ("15m", "1h").
	// Default DefaultExpiresIn.
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// CreatedURL is the response to a minted URL.
type CreatedURL struct {
	// URL is the absolute signed URL.
	URL string `json:"url"`
	// Path is its path and query, relative to the registry's base URL.
	Path string `json:"path"`
	// Kind is "manifests" or "blobs".
	Kind Kind `json:"kind"`
	// Digest is the content the URL reads (a tag resolved at minting).
	Digest digest.Digest `json:"digest"`
	// ExpiresAt is when the URL stops working.
	ExpiresAt time.Time `json:"expiresAt"`
}

type apiError struct {
	status    int
	code      string
	msg       string
	allow     string
	challenge bool // a Basic WWW-Authenticate header (401)
	cause     error
}

func newError(status int, code, msg string) *apiError {
	return &apiError{status: status, code: code, msg: msg}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		if err.cause != nil {
			h.opts.Logger.Error("signedurl: request failed", "method", r.Method, "path", r.URL.Path, "error", err.cause)
		}
		if err.allow != "" {
			w.Header().Set("Allow", err.allow)
		}
		if err.challenge {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+h.opts.Realm+`"`)
		}
		writeJSON(w, err.status, map[string]any{"errors": []map[string]string{{"code": err.code, "message": err.msg}}})
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) *apiError {
	if !Match(r) {
		return newError(http.StatusNotFound, "NOT_FOUND", "no such resource")
	}
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, RoutePrefix), RouteSuffix)
	if r.Method != http.MethodPost {
		e := newError(http.StatusMethodNotAllowed, "UNSUPPORTED", "method not allowed")
		e.allow = "POST"
		return e
	}
	if err := ociname.ValidateName(name); err != nil {
		return newError(http.StatusBadRequest, "NAME_INVALID", "invalid repository name: "+err.Error())
	}
	id, err := h.authorize(r, name)
	if err == nil && id.IsAnonymous() {
		err = errcode.Newf(errcode.Unauthenticated, nil, "signedurl: anonymous callers cannot mint signed URLs")
	}
	if err != nil {
		switch errcode.Of(err) {
		case errcode.Unauthenticated:
			e := newError(http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			e.challenge = true
			return e
		case errcode.NotFound:
			return newError(http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		case errcode.Internal, errcode.Unknown:
			return &apiError{status: http.StatusInternalServerError, code: "UNKNOWN", msg: "internal server error", cause: err}
		}
		return newError(http.StatusForbidden, "DENIED", "requested access to the resource is denied")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return newError(http.StatusUnsupportedMediaType, "BODY_INVALID", "the body must be application/json")
		}
	}
	var req CreateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError(http.StatusRequestEntityTooLarge, "SIZE_INVALID", "the request body is too large")
		}
		return newError(http.StatusBadRequest, "BODY_INVALID", "the body must be a JSON object with \"reference\" or \"digest\" and optionally \"expiresIn\"")
	}
	if _, err := dec.Token(); err != io.EOF {
		return newError(http.StatusBadRequest, "BODY_INVALID", "the body must hold one JSON object")
	}
	ttl := DefaultExpiresIn
	if req.ExpiresIn != "" {
		ttl, err = time.ParseDuration(req.ExpiresIn)
		if err != nil || ttl < time.Second {
			return newError(http.StatusBadRequest, "EXPIRY_INVALID", "expiresIn must be a duration of at least 1s, such as \"15m\"")
		}
	}
	if max := h.signer.opts.MaxTTL; ttl > max {
		return newError(http.StatusBadRequest, "EXPIRY_INVALID", "expiresIn exceeds the maximum of "+max.String())
	}
	ctx := r.Context()
	var (
		kind Kind
		d    digest.Digest
	)
	switch {
	case (req.Reference == "") == (req.Digest == ""):
		return newError(http.StatusBadRequest, "BODY_INVALID", "give exactly one of \"reference\" (a manifest's tag or digest) and \"digest\" (a blob)")
	case req.Digest != "":
		kind, d = Blob, digest.Digest(req.Digest)
		if d.Validate() != nil {
			return newError(http.StatusBadRequest, "DIGEST_INVALID", "invalid digest")
		}
		ok, err := h.meta.BlobLinked(ctx, name, d)
		if err != nil {
			return &apiError{status: http.StatusInternalServerError, code: "UNKNOWN", msg: "internal server error", cause: err}
		}
		if !ok {
			return newError(http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		}
	default:
		kind = Manifest
		if strings.Contains(req.Reference, ":") {
			d = digest.Digest(req.Reference)
			if d.Validate() != nil {
				return newError(http.StatusBadRequest, "DIGEST_INVALID", "invalid digest")
			}
		} else {
			if err := ociname.ValidateTag(req.Reference); err != nil {
				return newError(http.StatusBadRequest, "TAG_INVALID", "invalid tag: "+err.Error())
			}
			t, err := h.meta.GetTag(ctx, name, req.Reference)
			if err != nil {
				return h.lookupError(err)
			}
			d = t.Digest
		}
		if _, err := h.meta.GetManifest(ctx, name, d); err != nil {
			return h.lookupError(err)
		}
	}
	now := h.signer.opts.Now()
	expires := now.Add(ttl).Truncate(time.Second)
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(expires) {
		expires = id.ExpiresAt.Truncate(time.Second)
	}
	p, err := h.signer.Sign(name, kind, d, expires)
	if err != nil {
		// Only an expiry at or before now is left: the caller's
		// credentials expire within the second.
		return newError(http.StatusUnauthorized, "UNAUTHORIZED", "the credentials expire too soon to mint a URL")
	}
	base := h.opts.BaseURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, CreatedURL{URL: base + p, Path: p, Kind: kind, Digest: d, ExpiresAt: expires.UTC()})
	return nil
}

func (h *Handler) lookupError(err error) *apiError {
	if errors.Is(err, driver.ErrNotFound) {
		return newError(http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown to registry")
	}
	return &apiError{status: http.StatusInternalServerError, code: "UNKNOWN", msg: "internal server error", cause: err}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
