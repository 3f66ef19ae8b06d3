package manage

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
)

// Paths of the management API the Handler serves.
const (
	// RepositoriesPath is the collection of repositories; each
	// repository's resources are below RepositoriesPath + "/{name}".
	RepositoriesPath = "/api/v1/repositories"
	// OpenAPIPath serves the OpenAPI document of the whole /api/v1 API.
	OpenAPIPath = "/api/v1/openapi.yaml"
)

// Limits on requests.
const (
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes = 64 << 10
	// DefaultPageSize is the page size of lists when the request names
	// none; MaxPageSize is the largest a request may ask for (larger
	// values are lowered to it).
	DefaultPageSize = 100
	MaxPageSize     = 1000
	// MaxDescriptionBytes bounds a repository's description.
	MaxDescriptionBytes = 4096
	// MaxExclusions bounds a repository's immutable tag exclusions, and
	// MaxExclusionBytes the length of each.
	MaxExclusions     = 100
	MaxExclusionBytes = 128
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document describing every /api/v1
// route: the repository, image and tag routes of this package, the
// lifecycle-policy routes of package lifecycle, the token routes of
// package auth/tokens, the vulnerability routes of package scan/scanapi
// and the signed-URL route of package auth/signedurl. The Handler serves it
// at OpenAPIPath. The caller may modify the returned slice.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// AuthorizeFunc authenticates r and checks that its identity holds every
// action ("pull", "push", "delete") on repository repo, returning the
// identity. Called with no actions, it only authenticates: it returns the
// identity, auth.Anonymous included, or an error for invalid credentials.
// An error whose internal error code is Unauthenticated is answered 401,
// PermissionDenied 403, NotFound 404, and any other error 500.
// registry.Handler.Authorize is one, so that the management API shares the
// registry's authentication and policy.
type AuthorizeFunc func(r *http.Request, repo string, actions ...string) (*auth.Identity, error)

// Options configures a Handler. A nil *Options is the zero value, and the
// zero value of every field is safe.
type Options struct {
	// Realm is the realm of the Basic challenge sent with 401 answers.
	// Default "berth".
	Realm string
	// Logger receives server errors. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if strings.ContainsAny(o.Realm, "\"\\\r\n") {
		return errors.New("manage: Options.Realm may not contain quotes, backslashes or line breaks")
	}
	return nil
}

// Handler serves the repository, image and tag routes of the management
// API and its OpenAPI document (see the package doc).
type Handler struct {
	store     *storage.Store
	reg       driver.Registry
	authorize AuthorizeFunc
	opts      Options
}

// New returns a Handler over store, whose metadata backend must implement
// driver.Registry. authorize is required: every request but the one for
// the OpenAPI document goes through it first.
func New(store *storage.Store, authorize AuthorizeFunc, opts *Options) (*Handler, error) {
	if store == nil {
		return nil, errors.New("manage: New needs a store")
	}
	if authorize == nil {
		return nil, errors.New("manage: New needs an AuthorizeFunc")
	}
	reg, err := store.Registry()
	if err != nil {
		return nil, fmt.Errorf("manage: %w", err)
	}
	h := &Handler{store: store, reg: reg, authorize: authorize}
	if opts != nil {
		h.opts = *opts
	}
	if err := h.opts.validate(); err != nil {
		return nil, err
	}
	if h.opts.Realm == "" {
		h.opts.Realm = "berth"
	}
	if h.opts.Logger == nil {
		h.opts.Logger = slog.Default()
	}
	return h, nil
}

// The kinds of route.
const (
	routeOpenAPI      = "openapi"
	routeRepositories = "repositories"
	routeRepository   = "repository"
	routeImages       = "images"
	routeImage        = "image"
	routeHistory      = "history"
	routeRestore      = "restore"
)

// route is a parsed request path.
type route struct {
	kind string
	name string // repository name
	ref  string // digest or tag, unescaped
}

// parsePath splits a management API path. Repository names contain
// slashes, so the resource is read off the end of the path: the escaped
// path's last segments decide the route, and the rest is the name. A
// segment may hold a percent-encoded slash (%2F), which makes it part of
// the name: "x%2Fimages" names the repository x/images. ok is false for
// paths this package does not serve (lifecycle policies, signed URLs and
// vulnerabilities, served by other handlers, included).
func parsePath(escaped string) (rt route, ok bool) {
	if escaped == OpenAPIPath {
		return route{kind: routeOpenAPI}, true
	}
	if escaped == RepositoriesPath {
		return route{kind: routeRepositories}, true
	}
	rest, found := strings.CutPrefix(escaped, RepositoriesPath+"/")
	if !found || rest == "" {
		return route{}, false
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	// Digests hold a colon (perhaps percent-encoded); names and tags never
	// do.
	isDigest := func(s string) bool {
		u, err := url.PathUnescape(s)
		return err == nil && strings.Contains(u, ":")
	}
	name := func(k int) (string, bool) {
		parts := make([]string, k)
		for i, s := range segs[:k] {
			u, err := url.PathUnescape(s)
			if err != nil {
				return "", false
			}
			parts[i] = u
		}
		return strings.Join(parts, "/"), true
	}
	unescape := func(s string) (string, bool) {
		u, err := url.PathUnescape(s)
		return u, err == nil
	}
	var k int
	switch {
	case n >= 2 && (segs[n-1] == "lifecycle-policy" || segs[n-1] == "signed-urls"),
		n >= 3 && segs[n-2] == "lifecycle-policy" && segs[n-1] == "preview",
		n >= 4 && segs[n-3] == "images" && isDigest(segs[n-2]) && (segs[n-1] == "vulnerabilities" || segs[n-1] == "scan"):
		return route{}, false
	case n >= 3 && segs[n-2] == "images" && isDigest(segs[n-1]):
		rt.kind, k = routeImage, n-2
		rt.ref, ok = unescape(segs[n-1])
	case n >= 2 && segs[n-1] == "images":
		rt.kind, k, ok = routeImages, n-1, true
	case n >= 4 && segs[n-3] == "tags" && segs[n-1] == "history":
		rt.kind, k = routeHistory, n-3
		rt.ref, ok = unescape(segs[n-2])
	case n >= 4 && segs[n-3] == "tags" && segs[n-1] == "restore":
		rt.kind, k = routeRestore, n-3
		rt.ref, ok = unescape(segs[n-2])
	default:
		rt.kind, k, ok = routeRepository, n, true
	}
	if !ok {
		// An invalid escape: answered as an invalid name.
		return route{kind: routeRepository, name: rest}, true
	}
	if rt.name, ok = name(k); !ok {
		return route{kind: routeRepository, name: rest}, true
	}
	return rt, true
}

// repositoryPath returns the path of a repository's resource: the name
// with literal slashes unless that would read as another route, in which
// case its slashes are percent-encoded.
func repositoryPath(name string) string {
	p := RepositoriesPath + "/" + name
	if rt, ok := parsePath(p); ok && rt.kind == routeRepository && rt.name == name {
		return p
	}
	return RepositoriesPath + "/" + url.PathEscape(name)
}

// Match reports whether the request is for one of the Handler's routes,
// so that a server can send it here and everything else elsewhere.
func Match(r *http.Request) bool {
	_, ok := parsePath(r.URL.EscapedPath())
	return ok
}

// Wrap returns a handler serving the Handler's routes with h and every
// other request with next: the lifecycle-policy, vulnerability and
// signed-URL routes, the registry, the server's mux. Put it outside the other handlers of
// /api/v1/repositories/… (in front of the server's mux, as registryd
// does), so that repository names with percent-encoded slashes reach it
// as sent.
func (h *Handler) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Match(r) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler. Requests for paths it does not serve
// are answered 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := h.serve(w, r); err != nil {
		if err.cause != nil && err.status >= 500 {
			h.opts.Logger.Error("manage: request failed", "method", r.Method, "path", r.URL.Path, "err", err.cause)
		}
		err.write(w, r, h.opts.Realm)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) *apiError {
	rt, ok := parsePath(r.URL.EscapedPath())
	if !ok {
		return newError(http.StatusNotFound, codeNotFound, "no such resource")
	}
	if rt.kind != routeOpenAPI && rt.kind != routeRepositories {
		if err := ociname.ValidateName(rt.name); err != nil {
			return fieldError(http.StatusBadRequest, codeNameInvalid, err.Error(), "name")
		}
	}
	q := &request{w: w, r: r, rt: rt}
	switch rt.kind {
	case routeOpenAPI:
		if !methodIs(r, http.MethodGet) {
			return notAllowed("GET, HEAD")
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		writeBody(w, r, http.StatusOK, "application/yaml", openAPI)
		return nil
	case routeRepositories:
		if !methodIs(r, http.MethodGet) {
			return notAllowed("GET, HEAD")
		}
		return h.listRepositories(q)
	case routeRepository:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return h.getRepository(q)
		case http.MethodPut:
			return h.putRepository(q)
		case http.MethodPatch:
			return h.patchRepository(q)
		case http.MethodDelete:
			return h.deleteRepository(q)
		}
		return notAllowed("GET, HEAD, PUT, PATCH, DELETE")
	case routeImages:
		if !methodIs(r, http.MethodGet) {
			return notAllowed("GET, HEAD")
		}
		return h.listImages(q)
	case routeImage:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return h.getImage(q)
		case http.MethodDelete:
			return h.deleteImage(q)
		}
		return notAllowed("GET, HEAD, DELETE")
	case routeHistory:
		if !methodIs(r, http.MethodGet) {
			return notAllowed("GET, HEAD")
		}
		return h.tagHistory(q)
	case routeRestore:
		if r.Method != http.MethodPost {
			return notAllowed("POST")
		}
		return h.restoreTag(q)
	}
	return newError(http.StatusNotFound, codeNotFound, "no such resource")
}

func methodIs(r *http.Request, m string) bool {
	return r.Method == m || m == http.MethodGet && r.Method == http.MethodHead
}

// request carries what every route handler needs.
type request struct {
	w  http.ResponseWriter
	r  *http.Request
	rt route
	id *auth.Identity
}

// by names the caller in records (tag history, events).
func (q *request) by() string {
	if q.id == nil || q.id.IsAnonymous() {
		return "anonymous"
	}
	return q.id.Subject
}

// allow authenticates the request and checks that it holds every action
// on the route's repository.
func (h *Handler) allow(q *request, actions ...string) *apiError {
	id, err := h.authorize(q.r, q.rt.name, actions...)
	if err != nil {
		return h.authError(err)
	}
	if id == nil {
		id = auth.Anonymous
	}
	q.id = id
	return nil
}

func (h *Handler) authError(err error) *apiError {
	switch errcode.Of(err) {
	case errcode.Unauthenticated:
		return &apiError{status: http.StatusUnauthorized, items: []errorItem{{Code: codeUnauthorized, Message: "authentication required"}}, challenge: true}
	case errcode.PermissionDenied:
		return newError(http.StatusForbidden, codeDenied, "requested access to the resource is denied")
	case errcode.NotFound:
		return newError(http.StatusNotFound, codeNameUnknown, "repository name not known to registry")
	case errcode.ResourceExhausted:
		return newError(http.StatusTooManyRequests, codeTooManyRequests, "too many requests")
	}
	return internal(fmt.Errorf("manage: authorize: %w", err))
}

// pageParams reads ?n=.
func pageSize(r *http.Request) (int, *apiError) {
	s := r.URL.Query().Get("n")
	if s == "" {
		return DefaultPageSize, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fieldError(http.StatusBadRequest, codePaginationInvalid, "n must be a positive integer", "n")
	}
	return min(n, MaxPageSize), nil
}

// nextLink is the Link header value naming the next page.
func nextLink(path string, n int, last string) string {
	v := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	return "<" + path + "?" + v.Encode() + `>; rel="next"`
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// The API's types always marshal; should one not, the client
		// gets a server error rather than a truncated body.
		b, status = []byte(`{"errors":[{"code":"UNKNOWN","message":"internal server error"}]}`), http.StatusInternalServerError
	}
	writeBody(w, r, status, "application/json", b)
}

func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// utc returns t in UTC, or nil when t is zero.
func utc(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
