package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/storage"
)

// Options configures a Handler. A nil *Options is the zero value, whose
// every field is safe: with no Authorizer, everything is denied.
type Options struct {
	// Authenticator identifies requests. Nil treats every request as
	// anonymous.
	Authenticator auth.Authenticator
	// Authorizer grants scopes. Nil denies everything (the secure
	// default); registrytest wires a permissive one for tests.
	Authorizer auth.Authorizer
	// Realm is the token endpoint announced in Bearer challenges
	// (WWW-Authenticate: Bearer realm=…,service=…,scope=…). Empty announces
	// HTTP Basic instead.
	Realm string
	// Subjects returns the full identity of a token's subject. The catalog
	// uses it to list what the subject may pull when a bearer token
	// carries only the registry:catalog scope. Optional.
	Subjects SubjectResolver
	// Service is the service name in Bearer challenges. Default "berth".
	Service string
	// MaxManifestBytes bounds manifest bodies. Default 4 MiB.
	MaxManifestBytes int64
	// Logger receives server errors. Default slog.Default().
	Logger *slog.Logger
	// Mirror serves repositories that cache upstream registries (see
	// registry/pullthrough); nil mirrors none.
	Mirror Mirror
}

func (o *Options) validate() error {
	if o.MaxManifestBytes < 0 {
		return errors.New("registry: Options.MaxManifestBytes must not be negative")
	}
	if o.Realm != "" && !strings.HasPrefix(o.Realm, "https://") && !strings.HasPrefix(o.Realm, "http://") {
		return errors.New("registry: Options.Realm must be an http(s) URL")
	}
	return nil
}

// SubjectResolver returns the current identity of a subject, or an error
// matching auth.ErrUnauthenticated when it no longer exists.
// token.Revalidators implements it.
type SubjectResolver interface {
	Revalidate(ctx context.Context, subject string) (*auth.Identity, error)
}

// Handler serves the OCI Distribution Specification v1.1 API under /v2/.
// It is transport only: it parses requests, authorizes them, calls the
// store and writes responses and spec errors. Mount it at the root of a
// server (or under any mux that passes /v2/ paths through unchanged).
type Handler struct {
	store *storage.Store
	opts  Options
}

// New returns a Handler serving store. store's metadata backend must
// implement driver.Registry.
func New(store *storage.Store, opts *Options) (*Handler, error) {
	if store == nil {
		return nil, errors.New("registry: New needs a store")
	}
	if _, err := store.Registry(); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Service == "" {
		o.Service = "berth"
	}
	if o.MaxManifestBytes == 0 {
		o.MaxManifestBytes = storage.DefaultMaxManifestSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Handler{store: store, opts: o}, nil
}

// route is a parsed /v2/ request path.
type route struct {
	kind string // base, catalog, tags, manifest, blob, uploads, upload, referrers
	name string
	ref  string // tag or digest, upload ID
}

// parsePath splits a /v2/ path. The last segments decide the route:
// references, digests and upload IDs never contain '/', while repository
// names may contain the route words themselves.
func parsePath(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		if p == "/v2" {
			return route{kind: "base"}, true
		}
		return route{}, false
	}
	if rest == "" {
		return route{kind: "base"}, true
	}
	if rest == "_catalog" {
		return route{kind: "catalog"}, true
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	join := func(k int) string { return strings.Join(segs[:k], "/") }
	switch {
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		return route{kind: "tags", name: join(n - 2)}, true
	case n >= 3 && segs[n-2] == "manifests":
		return route{kind: "manifest", name: join(n - 2), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "referrers":
		return route{kind: "referrers", name: join(n - 2), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		return route{kind: "uploads", name: join(n - 2)}, true
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		if segs[n-1] == "" {
			return route{kind: "uploads", name: join(n - 3)}, true
		}
		return route{kind: "upload", name: join(n - 3), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "blobs":
		return route{kind: "blob", name: join(n - 2), ref: segs[n-1]}, true
	}
	return route{}, false
}

// request carries what every route handler needs.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	rt    route
	id    *auth.Identity
	scope []auth.Scope // granted
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := h.serve(w, r); err != nil {
		re := classify(err, codeNameUnknown)
		if re.Status >= 500 && re.Status != 499 {
			h.opts.Logger.Error("registry: request failed", "method", r.Method, "path", r.URL.Path, "err", re.cause)
		}
		re.write(w, r)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	rt, ok := parsePath(r.URL.Path)
	if !ok {
		return newErr(http.StatusNotFound, codeUnsupported, "no such endpoint")
	}
	if rt.name != "" {
		if err := ociname.ValidateName(rt.name); err != nil {
			return newErr(http.StatusBadRequest, codeNameInvalid, err.Error())
		}
	}
	id, err := h.authenticate(r)
	if err != nil {
		return err
	}
	if err := h.readOnlyMirror(rt, r.Method); err != nil {
		return err
	}
	q := &request{w: w, r: r, rt: rt, id: id}
	switch rt.kind {
	case "base":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return methodNotAllowed()
		}
		// The base endpoint tells clients whether to authenticate.
		if id.IsAnonymous() && h.opts.Authenticator != nil {
			return h.challenge(nil)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("{}"))
		}
		return nil
	case "catalog":
		return h.catalog(q)
	case "tags":
		return h.tags(q)
	case "manifest":
		return h.manifest(q)
	case "referrers":
		return h.referrers(q)
	case "blob":
		return h.blob(q)
	case "uploads", "upload":
		return h.upload(q)
	}
	return newErr(http.StatusNotFound, codeUnsupported, "no such endpoint")
}

func methodNotAllowed() error {
	return newErr(http.StatusMethodNotAllowed, codeUnsupported, "method not allowed")
}

func (h *Handler) authenticate(r *http.Request) (*auth.Identity, error) {
	if h.opts.Authenticator == nil {
		return auth.Anonymous, nil
	}
	id, err := h.opts.Authenticator.Authenticate(r)
	if err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			return nil, h.challenge(nil)
		}
		return nil, err
	}
	if id == nil {
		id = auth.Anonymous
	}
	return id, nil
}

// challenge is the 401 response asking for credentials.
func (h *Handler) challenge(scopes []auth.Scope) *regError {
	return h.challengeWith(scopes, "")
}

// challengeWith is challenge with an RFC 6750 error, such as
// "insufficient_scope" for a bearer token that lacks the scopes.
func (h *Handler) challengeWith(scopes []auth.Scope, bearerErr string) *regError {
	e := newErr(http.StatusUnauthorized, codeUnauthorized, "authentication required")
	if h.opts.Realm == "" {
		return e.with("WWW-Authenticate", `Basic realm="`+h.opts.Service+`"`)
	}
	c := fmt.Sprintf(`Bearer realm=%q,service=%q`, h.opts.Realm, h.opts.Service)
	if bearerErr != "" {
		c += fmt.Sprintf(`,error=%q`, bearerErr)
	}
	if len(scopes) > 0 {
		parts := make([]string, len(scopes))
		for i, s := range scopes {
			parts[i] = s.String()
		}
		c += fmt.Sprintf(`,scope=%q`, strings.Join(parts, " "))
	}
	return e.with("WWW-Authenticate", c)
}

// authorize checks that the request's identity holds every action on the
// repository; it returns the spec's 401 (anonymous) or 403 otherwise.
// Missing and private repositories answer alike, so nothing is revealed.
func (h *Handler) authorize(q *request, name string, actions ...string) error {
	return h.authorizeAll(q, auth.Scope{Type: auth.TypeRepository, Name: name, Actions: actions})
}

// authorizeAll checks that the identity holds every action of every scope.
func (h *Handler) authorizeAll(q *request, want ...auth.Scope) error {
	if h.opts.Authorizer == nil {
		return h.deny(q, want)
	}
	granted, err := h.opts.Authorizer.Authorize(q.r.Context(), q.id, want)
	if err != nil {
		return fmt.Errorf("registry: authorize: %w", err)
	}
	for _, w := range want {
		for _, a := range w.Actions {
			if !auth.Granted(granted, w.Type, w.Name, a) {
				return h.deny(q, want)
			}
		}
	}
	return nil
}

// deny answers a request lacking access: anonymous callers, and bearer
// tokens (which carry the scopes they were issued for) get a challenge
// naming the scopes needed, so that clients fetch a suitable token, as the
// Docker token specification describes; other identities get 403.
func (h *Handler) deny(q *request, want []auth.Scope) error {
	if q.id.IsAnonymous() {
		return h.challenge(want)
	}
	if isBearer(q.r) && h.opts.Realm != "" {
		return h.challengeWith(want, "insufficient_scope")
	}
	return newErr(http.StatusForbidden, codeDenied, "requested access to the resource is denied")
}

func isBearer(r *http.Request) bool {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "bearer")
}

// subject names the identity in records (tag history, events).
func subject(id *auth.Identity) string {
	if id.IsAnonymous() {
		return "anonymous"
	}
	return id.Subject
}

// Authorize authenticates r and checks that its identity holds every
// action on repository name, for management handlers served beside the
// registry (lifecycle policies, tokens, …) so that they share its
// authentication and policy. The error carries errcode Unauthenticated
// (no or invalid credentials) or PermissionDenied.
func (h *Handler) Authorize(r *http.Request, name string, actions ...string) (*auth.Identity, error) {
	id, err := h.authenticate(r)
	if err != nil {
		return nil, &errcode.Error{Code: errcode.Unauthenticated, Msg: "registry: authentication required"}
	}
	q := &request{r: r, id: id}
	err = h.authorize(q, name, actions...)
	var re *regError
	switch {
	case err == nil:
		return id, nil
	case !errors.As(err, &re):
		return nil, err // the authorizer could not decide
	case re.Status == http.StatusUnauthorized:
		return nil, &errcode.Error{Code: errcode.Unauthenticated, Msg: "registry: authentication required"}
	}
	return nil, &errcode.Error{Code: errcode.PermissionDenied, Msg: "registry: requested access to the resource is denied"}
}

// Identify returns the identity of r's credentials, or auth.Anonymous when
// it has none or they are invalid, for handlers that record who acted.
func (h *Handler) Identify(r *http.Request) *auth.Identity {
	id, err := h.authenticate(r)
	if err != nil {
		return auth.Anonymous
	}
	return id
}
