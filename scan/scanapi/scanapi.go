// Package scanapi serves the vulnerability routes of Berth's management
// API beside the registry, as lifecycle.Handler serves the policy routes:
//
//	GET  /api/v1/repositories/{name}/images/{digest}/vulnerabilities[?format=json|sarif|cyclonedx]
//	POST /api/v1/repositories/{name}/images/{digest}/scan
//
// GET returns the image's report from a scan.Pipeline: by default the
// scan.Report JSON (see the scan package doc) with its status always
// explicit — "Pending" (not scanned yet; the body has no lastScanned and
// the response a Retry-After), "Succeeded", "Unknown" (scanned, but the
// absence of findings means nothing: reason says why) or "Failed" (every
// attempt failed: reason says why). format=sarif gives a SARIF 2.1.0 log
// (scan/sarif; each rule carries security-severity) and format=cyclonedx
// a CycloneDX 1.6 VEX document (scan/cyclonedx). Those formats have no
// place for "this is not a complete answer", and an empty document would
// read as a clean image, so they are served only for Succeeded reports;
// for the other statuses the answer is 409 SCAN_INCOMPLETE with the
// status and reason in its detail.
//
// # Indexes
//
// A multi-platform image (an image index) is scanned image by image. Its
// report is the union of its images' findings, Unknown or Failed when any
// image's is, and its JSON carries a "children" array with each image's
// own report and platform, in index order (nested indexes flattened;
// attestations and other artifacts skipped). SARIF and CycloneDX output
// for an index encode the union.
//
// POST queues a rescan (even when a current report exists) and answers
// 202 Accepted with a Location header naming the vulnerabilities
// resource; with a durable queue the job is stored before the answer.
//
// # Errors
//
// Errors are JSON bodies {"errors":[{"code","message","detail"}]}: 400
// NAME_INVALID, DIGEST_INVALID or FORMAT_INVALID for malformed input (the
// format is one of the lower-case words above, given at most once, and no
// other query parameter is accepted); 401 UNAUTHORIZED (with a Basic
// challenge) and 403 DENIED from the AuthorizeFunc; 404 NAME_UNKNOWN or
// MANIFEST_UNKNOWN when the repository does not hold the image; 405 with
// Allow for other methods; 409 SCAN_INCOMPLETE as above; 503 UNAVAILABLE
// when the pipeline is closed or its queue full (with Retry-After).
//
// # Security
//
// Reading needs pull permission on the repository and triggering a scan
// push permission: the AuthorizeFunc decides (registryd asks the
// registry's authorizer). Authorization comes before any lookup, so that
// callers without access learn nothing about which images exist. Reports
// are keyed by digest, and a report is served only through a repository
// that holds the digest.
//
// # Concurrency
//
// A Handler is safe for concurrent use.
package scanapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/cyclonedx"
	"github.com/berth-dev/berth/scan/sarif"
	"github.com/berth-dev/berth/storage/driver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// Routes of the management API the Handler serves.
const (
	// RoutePrefix starts every path the Handler serves.
	RoutePrefix = "/api/v1/repositories/"
	// VulnerabilitiesSuffix ends the report resource: GET
	// /api/v1/repositories/{name}/images/{digest}/vulnerabilities.
	VulnerabilitiesSuffix = "/vulnerabilities"
	// ScanSuffix ends the rescan resource: POST
	// /api/v1/repositories/{name}/images/{digest}/scan.
	ScanSuffix = "/scan"
)

// Output formats of the vulnerabilities resource (its format parameter).
const (
	FormatJSON      = "json"
	FormatSARIF     = "sarif"
	FormatCycloneDX = "cyclonedx"
)

// Media types of the answers.
const (
	SARIFMediaType     = "application/sarif+json"
	CycloneDXMediaType = "application/vnd.cyclonedx+json; version=1.6"
)

// AuthorizeFunc decides whether the request may read (write false) or
// trigger (write true) scans of repo's images: pull permission to read,
// push permission to trigger. It returns nil to allow. An error whose
// internal error code is Unauthenticated is answered 401, NotFound 404,
// Internal 500, and any other error 403.
type AuthorizeFunc func(r *http.Request, repo string, write bool) error

// Images is what the Handler reads about images; every driver.Registry
// satisfies it.
type Images interface {
	// GetManifest returns the manifest record, or an error wrapping
	// driver.ErrNotFound.
	GetManifest(ctx context.Context, repo string, d digest.Digest) (*driver.Manifest, error)
	// GetRepository returns the repository, or an error wrapping
	// driver.ErrNotFound.
	GetRepository(ctx context.Context, name string) (*driver.Repository, error)
}

// HandlerOptions configures a Handler. A nil *HandlerOptions is the zero
// value, and the zero value of every field is safe.
type HandlerOptions struct {
	// Logger receives server errors. Default slog.Default().
	Logger *slog.Logger
	// RetryAfter is the Retry-After (seconds) of Pending reports and
	// 503 answers. Default 10.
	RetryAfter int
	// Realm is the realm of the Basic challenge (WWW-Authenticate) sent
	// with 401 answers. Default "berth", as the other management routes.
	Realm string
}

func (o *HandlerOptions) validate() error {
	if o.RetryAfter < 0 {
		return errors.New("scanapi: negative HandlerOptions.RetryAfter")
	}
	if strings.ContainsAny(o.Realm, "\"\\\r\n") {
		return errors.New("scanapi: HandlerOptions.Realm may not contain quotes, backslashes or line breaks")
	}
	return nil
}

// Handler serves the vulnerability routes. Create it with NewHandler.
type Handler struct {
	pipeline  *scan.Pipeline
	images    Images
	authorize AuthorizeFunc
	opts      HandlerOptions
}

// NewHandler returns a Handler serving p's reports of the images in
// images. authorize is required: every request goes through it first.
func NewHandler(p *scan.Pipeline, images Images, authorize AuthorizeFunc, opts *HandlerOptions) (*Handler, error) {
	if p == nil || images == nil {
		return nil, errors.New("scanapi: NewHandler needs a Pipeline and Images")
	}
	if authorize == nil {
		return nil, errors.New("scanapi: NewHandler needs an AuthorizeFunc")
	}
	h := &Handler{pipeline: p, images: images, authorize: authorize}
	if opts != nil {
		h.opts = *opts
	}
	if err := h.opts.validate(); err != nil {
		return nil, err
	}
	if h.opts.Realm == "" {
		h.opts.Realm = "berth"
	}
	if h.opts.RetryAfter == 0 {
		h.opts.RetryAfter = 10
	}
	if h.opts.Logger == nil {
		h.opts.Logger = slog.Default()
	}
	return h, nil
}

// route is a parsed request path.
type route struct {
	name, digest string
	scan         bool
}

// parse splits /api/v1/repositories/{name}/images/{digest}/{vulnerabilities|scan}.
// Repository names contain slashes but never the segment "images"
// followed by a digest and a resource, so the resource is parsed off the
// end.
func parse(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, RoutePrefix)
	if !ok {
		return route{}, false
	}
	var rt route
	switch {
	case strings.HasSuffix(rest, VulnerabilitiesSuffix):
		rest = strings.TrimSuffix(rest, VulnerabilitiesSuffix)
	case strings.HasSuffix(rest, ScanSuffix):
		rest, rt.scan = strings.TrimSuffix(rest, ScanSuffix), true
	default:
		return route{}, false
	}
	i := strings.LastIndex(rest, "/images/")
	if i <= 0 {
		return route{}, false
	}
	rt.name, rt.digest = rest[:i], rest[i+len("/images/"):]
	if rt.digest == "" || strings.Contains(rt.digest, "/") {
		return route{}, false
	}
	return rt, true
}

// Match reports whether the request is for one of the Handler's routes,
// so that a server can send it here and everything else elsewhere.
func Match(r *http.Request) bool {
	_, ok := parse(r.URL.Path)
	return ok
}

// Wrap returns a handler serving the vulnerability routes with h and
// every other request with next.
func (h *Handler) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Match(r) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiError is an error response.
type apiError struct {
	status int
	item   errorItem
	header map[string]string
	cause  error
}

type errorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

func newError(status int, code, msg string) *apiError {
	return &apiError{status: status, item: errorItem{Code: code, Message: msg}}
}

func internal(err error) *apiError {
	e := newError(http.StatusInternalServerError, "UNKNOWN", "internal server error")
	e.cause = err
	return e
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		if err.cause != nil {
			h.opts.Logger.Error("scanapi: request failed", "method", r.Method, "path", r.URL.Path, "error", err.cause)
		}
		for k, v := range err.header {
			w.Header().Set(k, v)
		}
		writeJSON(w, err.status, "application/json", map[string]any{"errors": []errorItem{err.item}})
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) *apiError {
	rt, ok := parse(r.URL.Path)
	if !ok {
		return newError(http.StatusNotFound, "NOT_FOUND", "no such resource")
	}
	switch {
	case rt.scan && r.Method != http.MethodPost:
		e := newError(http.StatusMethodNotAllowed, "UNSUPPORTED", "method not allowed")
		e.header = map[string]string{"Allow": "POST"}
		return e
	case !rt.scan && r.Method != http.MethodGet && r.Method != http.MethodHead:
		e := newError(http.StatusMethodNotAllowed, "UNSUPPORTED", "method not allowed")
		e.header = map[string]string{"Allow": "GET, HEAD"}
		return e
	}
	if err := ociname.ValidateName(rt.name); err != nil {
		return newError(http.StatusBadRequest, "NAME_INVALID", "invalid repository name: "+err.Error())
	}
	d, err := digest.Parse(rt.digest)
	if err != nil || (d.Algorithm() != digest.SHA256 && d.Algorithm() != digest.SHA512) {
		return newError(http.StatusBadRequest, "DIGEST_INVALID", "invalid manifest digest: want sha256:<64 hex> or sha512:<128 hex>")
	}
	h1, err := v1.NewHash(string(d))
	if err != nil {
		return newError(http.StatusBadRequest, "DIGEST_INVALID", "invalid manifest digest")
	}
	format := FormatJSON
	if !rt.scan {
		q := r.URL.Query()
		for k := range q {
			if k != "format" {
				return newError(http.StatusBadRequest, "FORMAT_INVALID", "unknown query parameter "+strconv.Quote(k))
			}
		}
		if f := q["format"]; len(f) > 1 {
			return newError(http.StatusBadRequest, "FORMAT_INVALID", "format given more than once")
		} else if len(f) == 1 {
			format = f[0]
		}
		if format != FormatJSON && format != FormatSARIF && format != FormatCycloneDX {
			return newError(http.StatusBadRequest, "FORMAT_INVALID", "format must be json, sarif or cyclonedx")
		}
	}
	if err := h.authorize(r, rt.name, rt.scan); err != nil {
		switch errcode.Of(err) {
		case errcode.Unauthenticated:
			e := newError(http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			e.header = map[string]string{"WWW-Authenticate": `Basic realm="` + h.opts.Realm + `"`}
			return e
		case errcode.NotFound:
			return newError(http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		case errcode.Internal:
			return internal(err)
		}
		return newError(http.StatusForbidden, "DENIED", "requested access to the resource is denied")
	}
	ctx := r.Context()
	if _, err := h.images.GetRepository(ctx, rt.name); err != nil {
		return h.lookupError(err, "NAME_UNKNOWN", "repository name not known to registry")
	}
	m, err := h.images.GetManifest(ctx, rt.name, d)
	if err != nil {
		return h.lookupError(err, "MANIFEST_UNKNOWN", "the repository holds no manifest with this digest")
	}
	if rt.scan {
		return h.rescan(w, r, rt.name, h1)
	}
	return h.report(w, r, m, h1, format)
}

func (h *Handler) lookupError(err error, code, msg string) *apiError {
	if errors.Is(err, driver.ErrNotFound) {
		return newError(http.StatusNotFound, code, msg)
	}
	return internal(err)
}

func (h *Handler) unavailable(msg string) *apiError {
	e := newError(http.StatusServiceUnavailable, "UNAVAILABLE", msg)
	e.header = map[string]string{"Retry-After": strconv.Itoa(h.opts.RetryAfter)}
	return e
}

func (h *Handler) rescan(w http.ResponseWriter, r *http.Request, repo string, d v1.Hash) *apiError {
	err := h.pipeline.Rescan(r.Context(), repo, d)
	switch {
	case errors.Is(err, scan.ErrClosed):
		return h.unavailable("the scan pipeline is shutting down")
	case errors.Is(err, scan.ErrQueueFull):
		return h.unavailable("the scan queue is full")
	case err != nil:
		return internal(err)
	}
	loc := RoutePrefix + repo + "/images/" + d.String() + VulnerabilitiesSuffix
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusAccepted, "application/json", map[string]string{"repository": repo, "digest": d.String(), "status": "Queued", "report": loc})
	return nil
}

// IndexReport is the JSON answer for an image index: the index's report
// (the union of its images') and each image's own.
type IndexReport struct {
	*scan.Report
	// Children are the index's images, in index order.
	Children []scan.ChildReport `json:"children"`
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request, m *driver.Manifest, d v1.Hash, format string) *apiError {
	ctx := r.Context()
	rep, err := h.pipeline.Report(ctx, d)
	if err != nil {
		return internal(err)
	}
	if rep.Status == scan.StatusPending {
		w.Header().Set("Retry-After", strconv.Itoa(h.opts.RetryAfter))
	}
	if format != FormatJSON && rep.Status != scan.StatusSucceeded {
		e := newError(http.StatusConflict, "SCAN_INCOMPLETE", "the image has no complete report to encode as "+format+"; its status is "+string(rep.Status))
		e.item.Detail = map[string]string{"status": string(rep.Status), "reason": rep.Reason}
		if rep.Status == scan.StatusPending {
			e.header = map[string]string{"Retry-After": strconv.Itoa(h.opts.RetryAfter)}
		}
		return e
	}
	var buf bytes.Buffer
	switch format {
	case FormatSARIF:
		if err := sarif.Encode(&buf, rep); err != nil {
			return internal(err)
		}
		writeBody(w, r, http.StatusOK, SARIFMediaType, buf.Bytes())
		return nil
	case FormatCycloneDX:
		if err := cyclonedx.Encode(&buf, rep); err != nil {
			return internal(err)
		}
		writeBody(w, r, http.StatusOK, CycloneDXMediaType, buf.Bytes())
		return nil
	}
	var body any = rep
	if types.MediaType(m.MediaType).IsIndex() {
		ir := IndexReport{Report: rep, Children: []scan.ChildReport{}}
		if err := h.children(ctx, m, &ir, 0); err != nil {
			return internal(err)
		}
		body = ir
	}
	b, err := json.Marshal(body)
	if err != nil {
		return internal(err)
	}
	writeBody(w, r, http.StatusOK, "application/json", b)
	return nil
}

// children appends the reports of the images of index m, descending into
// nested indexes.
func (h *Handler) children(ctx context.Context, m *driver.Manifest, ir *IndexReport, depth int) error {
	if depth > 8 {
		return nil
	}
	for _, c := range m.Children {
		cm, err := h.images.GetManifest(ctx, m.Repository, c)
		if errors.Is(err, driver.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if len(cm.Children) > 0 {
			if err := h.children(ctx, cm, ir, depth+1); err != nil {
				return err
			}
			continue
		}
		if !types.MediaType(cm.MediaType).IsImage() {
			continue // not an image: the pipeline does not scan it
		}
		ch, err := v1.NewHash(string(c))
		if err != nil {
			continue
		}
		rep, err := h.pipeline.Report(ctx, ch)
		if err != nil {
			return err
		}
		cr := scan.ChildReport{Digest: ch, Report: rep}
		if len(cm.Platforms) > 0 {
			p := cm.Platforms[0]
			cr.Platform = &v1.Platform{Architecture: p.Architecture, OS: p.OS, OSVersion: p.OSVersion, OSFeatures: p.OSFeatures, Variant: p.Variant}
		}
		ir.Children = append(ir.Children, cr)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, ct string, v any) {
	b, _ := json.Marshal(v)
	writeBody(w, nil, status, ct, b)
}

func writeBody(w http.ResponseWriter, r *http.Request, status int, ct string, b []byte) {
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r != nil && r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// QueuePushes returns a handler passing every request to next (the
// registry) and queueing, with p.OnPush, a scan of each manifest pushed
// through it: a PUT of /v2/{name}/manifests/{reference} answered 201
// Created with a Docker-Content-Digest header. The job is queued after
// the response is written and without waiting (see scan.Pipeline), so a
// push never waits for, or fails because of, scanning. Pulls are not
// watched: they never wait for or cause a write.
//
// The job is queued after the manifest is committed, not in the same
// transaction: a crash in between, or a full queue, loses it. The
// pipeline's sweep (at start and every RescanInterval) queues every
// recently pushed image that has no report, so every pushed image is
// scanned within one RescanInterval even then.
func QueuePushes(p *scan.Pipeline, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, ok := manifestPut(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status != http.StatusCreated {
			return
		}
		if h, err := v1.NewHash(w.Header().Get("Docker-Content-Digest")); err == nil {
			p.OnPush(repo, h)
		}
	})
}

// manifestPut returns the repository of a manifest push.
func manifestPut(r *http.Request) (string, bool) {
	if r.Method != http.MethodPut {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(rest, "/manifests/")
	if i <= 0 || strings.Contains(rest[i+len("/manifests/"):], "/") {
		return "", false
	}
	return rest[:i], true
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
