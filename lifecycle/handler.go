package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Routes of the management API the Handler serves.
const (
	// RoutePrefix starts every path the Handler serves.
	RoutePrefix = "/api/v1/repositories/"
	// PolicySuffix ends the policy resource: GET, PUT and DELETE
	// /api/v1/repositories/{name}/lifecycle-policy.
	PolicySuffix = "/lifecycle-policy"
	// PreviewSuffix ends the preview resource: POST
	// /api/v1/repositories/{name}/lifecycle-policy/preview.
	PreviewSuffix = "/lifecycle-policy/preview"
)

// AuthorizeFunc decides whether the request may read (write false) or
// change (write true) the lifecycle policy of repo. It returns nil to
// allow. An error whose internal error code is Unauthenticated is
// answered 401 with a Basic challenge, NotFound 404, ResourceExhausted 429
// with Retry-After (at least 1 s, or the error's RetryAfterSeconds()),
// Internal 500, and any other error 403.
type AuthorizeFunc func(r *http.Request, repo string, write bool) error

// HandlerOptions configures a Handler. A nil *HandlerOptions is the zero
// value, and the zero value of every field is safe.
type HandlerOptions struct {
	// Identity names the caller, for the policy's UpdatedBy and events.
	// Default: the empty name.
	Identity func(r *http.Request) string
	// Logger receives server errors. Default slog.Default().
	Logger *slog.Logger
	// Realm is the realm of the Basic challenge (WWW-Authenticate) sent
	// with 401 answers. Default "berth", as the other management routes.
	Realm string
}

// Handler serves the lifecycle-policy routes of the management API:
//
//	GET    /api/v1/repositories/{name}/lifecycle-policy          the stored document
//	PUT    /api/v1/repositories/{name}/lifecycle-policy          store a document (ECR JSON as is)
//	DELETE /api/v1/repositories/{name}/lifecycle-policy          remove it
//	POST   /api/v1/repositories/{name}/lifecycle-policy/preview  dry run: what would expire, and why
//
// GET returns the repository's own policy; a registry-wide policy
// (Options.RegistryPolicy) shows in previews, as "policy": "registry".
// Errors are JSON bodies {"errors":[{"code","message","detail"}]}; an
// invalid policy is a 400 with one POLICY_INVALID entry per problem,
// whose detail names the field.
type Handler struct {
	runner    *Runner
	authorize AuthorizeFunc
	opts      HandlerOptions
	mux       *http.ServeMux
}

// NewHandler returns the handler over the runner's metadata, clock and
// grace period. authorize is required: every request goes through it
// first.
func NewHandler(r *Runner, authorize AuthorizeFunc, opts *HandlerOptions) (*Handler, error) {
	if r == nil {
		return nil, errors.New("lifecycle: NewHandler needs a Runner")
	}
	if authorize == nil {
		return nil, errors.New("lifecycle: NewHandler needs an AuthorizeFunc")
	}
	h := &Handler{runner: r, authorize: authorize}
	if opts != nil {
		h.opts = *opts
	}
	if h.opts.Identity == nil {
		h.opts.Identity = func(*http.Request) string { return "" }
	}
	if h.opts.Logger == nil {
		h.opts.Logger = slog.Default()
	}
	if strings.ContainsAny(h.opts.Realm, "\"\\\r\n") {
		return nil, errors.New("lifecycle: HandlerOptions.Realm may not contain quotes, backslashes or line breaks")
	}
	if h.opts.Realm == "" {
		h.opts.Realm = "berth"
	}
	// Repository names contain slashes, so the name is the rest of the
	// path, and the resource is parsed off its end.
	h.mux = http.NewServeMux()
	h.mux.HandleFunc(RoutePrefix+"{name...}", h.route)
	return h, nil
}

// Match reports whether the request is for one of the Handler's routes,
// so that a server can send it here and everything else elsewhere.
func Match(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, RoutePrefix) && (strings.HasSuffix(p, PolicySuffix) || strings.HasSuffix(p, PreviewSuffix))
}

// Wrap returns a handler serving the lifecycle routes with h and every
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

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// apiError is an error response.
type apiError struct {
	status int
	items  []errorItem
	allow  string
	cause  error
	// retryAfter is the Retry-After header of a 429, in seconds.
	retryAfter int
	// challenge adds a Basic WWW-Authenticate header (401).
	challenge bool
}

type errorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

func newError(status int, code, msg string) *apiError {
	return &apiError{status: status, items: []errorItem{{Code: code, Message: msg}}}
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		if err.cause != nil {
			h.opts.Logger.Error("lifecycle: request failed", "method", r.Method, "path", r.URL.Path, "error", err.cause)
		}
		if err.allow != "" {
			w.Header().Set("Allow", err.allow)
		}
		if err.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(err.retryAfter))
		}
		if err.challenge {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+h.opts.Realm+`"`)
		}
		writeJSON(w, err.status, map[string]any{"errors": err.items})
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) *apiError {
	name := r.PathValue("name")
	var preview bool
	switch {
	case strings.HasSuffix(name, PreviewSuffix):
		name, preview = strings.TrimSuffix(name, PreviewSuffix), true
	case strings.HasSuffix(name, PolicySuffix):
		name = strings.TrimSuffix(name, PolicySuffix)
	default:
		return newError(http.StatusNotFound, "NOT_FOUND", "no such resource")
	}
	write := false
	switch {
	case preview && r.Method == http.MethodPost:
	case preview:
		e := newError(http.StatusMethodNotAllowed, "UNSUPPORTED", "method not allowed")
		e.allow = "POST"
		return e
	case r.Method == http.MethodGet:
	case r.Method == http.MethodPut || r.Method == http.MethodDelete:
		write = true
	default:
		e := newError(http.StatusMethodNotAllowed, "UNSUPPORTED", "method not allowed")
		e.allow = "GET, PUT, DELETE"
		return e
	}
	if err := ociname.ValidateName(name); err != nil {
		return newError(http.StatusBadRequest, "NAME_INVALID", "invalid repository name: "+err.Error())
	}
	if err := h.authorize(r, name, write); err != nil {
		switch errcode.Of(err) {
		case errcode.Unauthenticated:
			e := newError(http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			e.challenge = true
			return e
		case errcode.NotFound:
			return newError(http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		case errcode.ResourceExhausted:
			e := newError(http.StatusTooManyRequests, "TOOMANYREQUESTS", "too many requests")
			e.retryAfter = 1
			var ra interface{ RetryAfterSeconds() int }
			if errors.As(err, &ra) {
				e.retryAfter = max(ra.RetryAfterSeconds(), 1)
			}
			return e
		case errcode.Internal:
			return &apiError{status: http.StatusInternalServerError, items: []errorItem{{Code: "UNKNOWN", Message: "internal server error"}}, cause: err}
		}
		return newError(http.StatusForbidden, "DENIED", "requested access to the resource is denied")
	}
	ctx := r.Context()
	meta := h.runner.meta
	if _, err := meta.GetRepository(ctx, name); err != nil {
		return h.storageError(err, "NAME_UNKNOWN", "repository name not known to registry")
	}
	switch {
	case preview:
		return h.preview(w, r, name)
	case r.Method == http.MethodGet:
		p, err := meta.GetPolicy(ctx, name)
		if err != nil {
			return h.storageError(err, "POLICY_UNKNOWN", "the repository has no lifecycle policy")
		}
		w.Header().Set("Last-Modified", p.UpdatedAt.UTC().Format(http.TimeFormat))
		writeRaw(w, http.StatusOK, p.Document)
	case r.Method == http.MethodPut:
		doc, apiErr := readBody(w, r)
		if apiErr != nil {
			return apiErr
		}
		if _, err := Parse(doc); err != nil {
			return policyError(err)
		}
		now := h.runner.opts.Clock.Now().UTC()
		by := h.opts.Identity(r)
		err := meta.PutPolicy(ctx, &driver.Policy{Repository: name, Document: doc, UpdatedAt: now, UpdatedBy: by},
			policyEvent(EventPolicyUpdated, name, by, now))
		if err != nil {
			return h.storageError(err, "NAME_UNKNOWN", "repository name not known to registry")
		}
		writeRaw(w, http.StatusOK, doc)
	case r.Method == http.MethodDelete:
		now := h.runner.opts.Clock.Now().UTC()
		by := h.opts.Identity(r)
		if err := meta.DeletePolicy(ctx, name, policyEvent(EventPolicyDeleted, name, by, now)); err != nil {
			return h.storageError(err, "POLICY_UNKNOWN", "the repository has no lifecycle policy")
		}
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

func policyEvent(typ, repo, by string, now time.Time) driver.Event {
	data, _ := json.Marshal(map[string]string{"repository": repo, "by": by})
	return driver.Event{Type: typ, Subject: repo, Data: data, CreatedAt: now}
}

// readBody reads a policy document of at most MaxDocumentSize bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	doc, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxDocumentSize))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, newError(http.StatusRequestEntityTooLarge, "SIZE_INVALID", fmt.Sprintf("the policy document is longer than %d bytes", MaxDocumentSize))
	}
	if err != nil {
		return nil, newError(http.StatusBadRequest, "BODY_INVALID", "cannot read the request body")
	}
	return doc, nil
}

func policyError(err error) *apiError {
	var ipe *InvalidPolicyError
	if !errors.As(err, &ipe) {
		return newError(http.StatusBadRequest, "POLICY_INVALID", err.Error())
	}
	e := &apiError{status: http.StatusBadRequest}
	for _, f := range ipe.Fields {
		item := errorItem{Code: "POLICY_INVALID", Message: f.Error()}
		if f.Path != "" {
			item.Detail = map[string]string{"field": f.Path}
		}
		e.items = append(e.items, item)
	}
	return e
}

func (h *Handler) storageError(err error, notFoundCode, notFoundMsg string) *apiError {
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return newError(http.StatusNotFound, notFoundCode, notFoundMsg)
	case errors.Is(err, driver.ErrInvalidArgument):
		return newError(http.StatusBadRequest, "POLICY_INVALID", "the policy document is not valid JSON")
	}
	return &apiError{status: http.StatusInternalServerError, items: []errorItem{{Code: "UNKNOWN", Message: "internal server error"}}, cause: err}
}

// PreviewResponse is the body of a preview: the dry run of a policy on a
// repository's images.
type PreviewResponse struct {
	// Repository is the repository evaluated.
	Repository string `json:"repository"`
	// EvaluatedAt is the time the policy was evaluated at.
	EvaluatedAt time.Time `json:"evaluatedAt"`
	// Policy says which policy was evaluated: "request" (the body),
	// "repository" (the stored one) or "registry" (the runner's
	// registry-wide policy).
	Policy string `json:"policy"`
	// Expire lists what would expire, in the order it would be expired.
	Expire []PreviewImage `json:"expire"`
	// Keep lists the other images.
	Keep []PreviewImage `json:"keep"`
}

// PreviewImage is one image of a preview, with the decision on it.
type PreviewImage struct {
	// Digest and Tags identify the image.
	Digest digest.Digest `json:"digest"`
	Tags   []string      `json:"tags"`
	// MediaType and ArtifactType describe the manifest.
	MediaType    string `json:"mediaType,omitempty"`
	ArtifactType string `json:"artifactType,omitempty"`
	// PushedAt is when it was pushed; LastPulledAt when it was last
	// pulled, absent if never.
	PushedAt     time.Time  `json:"pushedAt"`
	LastPulledAt *time.Time `json:"lastPulledAt,omitempty"`
	// Action is "expire" or "keep".
	Action ActionType `json:"action"`
	// Rule is the rulePriority of the deciding rule; 0 when none.
	Rule int `json:"rule"`
	// Reason explains the decision.
	Reason string `json:"reason"`
}

func (h *Handler) preview(w http.ResponseWriter, r *http.Request, name string) *apiError {
	doc, apiErr := readBody(w, r)
	if apiErr != nil {
		return apiErr
	}
	var p *Policy
	source := "repository"
	if len(bytes.TrimSpace(doc)) > 0 {
		var err error
		if p, err = Parse(doc); err != nil {
			return policyError(err)
		}
		source = "request"
	}
	rr, err := h.runner.Preview(r.Context(), name, p)
	if err != nil {
		var ipe *InvalidPolicyError
		if errors.As(err, &ipe) {
			return &apiError{status: http.StatusConflict, items: []errorItem{{Code: "POLICY_INVALID", Message: "the stored lifecycle policy is invalid: " + ipe.Error()}}}
		}
		return h.storageError(err, "POLICY_UNKNOWN", "the repository has no lifecycle policy; send one in the body to preview it")
	}
	if rr.RegistryPolicy {
		source = "registry"
	}
	resp := PreviewResponse{Repository: name, EvaluatedAt: rr.EvaluatedAt.UTC(), Policy: source, Expire: []PreviewImage{}, Keep: []PreviewImage{}}
	byDigest := map[digest.Digest]int{}
	for i := range rr.Images {
		byDigest[rr.Images[i].Digest] = i
	}
	item := func(d Decision) PreviewImage {
		img := &rr.Images[byDigest[d.Digest]]
		pi := PreviewImage{Digest: d.Digest, Tags: nonNil(d.Tags), MediaType: img.MediaType, ArtifactType: img.ArtifactType,
			PushedAt: img.PushedAt.UTC(), Action: d.Action, Rule: d.Rule, Reason: d.Reason}
		if !img.LastPulledAt.IsZero() {
			t := img.LastPulledAt.UTC()
			pi.LastPulledAt = &t
		}
		return pi
	}
	for _, d := range rr.Expired {
		resp.Expire = append(resp.Expire, item(d))
	}
	for _, d := range rr.Decisions {
		if d.Action != Expire {
			resp.Keep = append(resp.Keep, item(d))
		}
	}
	b, _ := json.Marshal(resp)
	writeRaw(w, http.StatusOK, b)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
