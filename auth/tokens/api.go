package tokens

import (
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
)

// APIOptions configures the management API handler. The zero value of
// every field is safe.
type APIOptions struct {
	// Realm is the realm of the Basic challenge sent with 401 answers.
	// Default "berth".
	Realm string
	// Logger receives server errors. Default slog.Default().
	Logger *slog.Logger
}

// MaxBodyBytes bounds creation request bodies.
const MaxBodyBytes = 64 << 10

// DefaultPageSize and MaxPageSize bound list pages.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

type api struct {
	m     *Manager
	authn auth.Authenticator
	authz auth.Authorizer
	opts  APIOptions
	mux   *http.ServeMux
}

// NewAPI returns the management API handler (see the package doc). It
// serves /api/v1/tokens and /api/v1/tokens/{id}; mount it on both
// patterns. authn identifies callers (a throttled auth.ByScheme of Basic and
// Bearer, typically); authz must grant "registry:tokens:<action>".
func NewAPI(m *Manager, authn auth.Authenticator, authz auth.Authorizer, opts *APIOptions) (http.Handler, error) {
	if m == nil || authn == nil || authz == nil {
		return nil, errors.New("tokens: NewAPI needs a manager, an authenticator and an authorizer")
	}
	a := &api{m: m, authn: authn, authz: authz}
	if opts != nil {
		a.opts = *opts
	}
	if a.opts.Realm == "" {
		a.opts.Realm = "berth"
	}
	if a.opts.Logger == nil {
		a.opts.Logger = slog.Default()
	}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("POST /api/v1/tokens", a.wrap(ActionCreate, a.create))
	a.mux.HandleFunc("GET /api/v1/tokens", a.wrap(ActionList, a.list))
	a.mux.HandleFunc("GET /api/v1/tokens/{id}", a.wrap(ActionList, a.get))
	a.mux.HandleFunc("DELETE /api/v1/tokens/{id}", a.wrap(ActionDelete, a.revoke))
	a.mux.HandleFunc("/api/v1/tokens", a.notAllowed)
	a.mux.HandleFunc("/api/v1/tokens/{id}", a.notAllowed)
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such endpoint")
	})
	return a, nil
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	a.mux.ServeHTTP(w, r)
}

func (a *api) notAllowed(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/tokens") {
		w.Header().Set("Allow", "GET, POST")
	} else {
		w.Header().Set("Allow", "GET, DELETE")
	}
	writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed")
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string][]apiError{"errors": {{Code: code, Message: msg}}})
}

// fail writes err as the API's JSON error.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var se *auth.ScopeError
	var ie *InvalidError
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &se):
		writeError(w, http.StatusBadRequest, "INVALID_SCOPE", se.Error())
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", ie.Error())
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
		writeError(w, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "too many requests; retry later")
	case errors.Is(err, auth.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", a.opts.Realm))
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
	case errors.Is(err, ErrPermission):
		writeError(w, http.StatusForbidden, "DENIED", err.Error())
	case errcode.Of(err) == errcode.NotFound:
		writeError(w, http.StatusNotFound, "NOT_FOUND", "token not found")
	case errcode.Of(err) == errcode.InvalidArgument:
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", err.Error())
	default:
		if errcode.Of(err) != errcode.Canceled {
			a.opts.Logger.Error("tokens: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "internal server error")
	}
}

// wrap authenticates the caller and checks that it holds the management
// action before calling h.
func (a *api) wrap(action string, h func(http.ResponseWriter, *http.Request, *auth.Identity) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := a.authn.Authenticate(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if id.IsAnonymous() {
			a.fail(w, r, auth.ErrUnauthenticated)
			return
		}
		want := auth.Scope{Type: auth.TypeRegistry, Name: ScopeName, Actions: []string{action}}
		granted, err := a.authz.Authorize(r.Context(), id, []auth.Scope{want})
		if err != nil {
			a.fail(w, r, fmt.Errorf("tokens: authorize: %w", err))
			return
		}
		if !auth.Granted(granted, auth.TypeRegistry, ScopeName, action) {
			a.fail(w, r, fmt.Errorf("%w: %s needs the scope %s", ErrPermission, action, want))
			return
		}
		if id.Grace {
			a.fail(w, r, auth.ErrUnauthenticated)
			return
		}
		if err := h(w, r, id); err != nil {
			a.fail(w, r, err)
		}
	}
}

type createBody struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	ExpiresIn string     `json:"expiresIn"`
	RateLimit *RateLimit `json:"rateLimit"`
}

type createdBody struct {
	*Token
	Secret string `json:"secret"`
}

// ParseExpiresIn parses a token lifetime: a Go duration ("720h") or a
// whole number of days ("30d"). The empty string is zero (the default).
func ParseExpiresIn(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	bad := &InvalidError{Field: "expiresIn", Reason: `want a duration such as "720h" or "30d"`}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 100000 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

func (a *api) create(w http.ResponseWriter, r *http.Request, id *auth.Identity) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &InvalidError{Field: "body", Reason: "want Content-Type application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	var b createBody
	if err := dec.Decode(&b); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &InvalidError{Field: "body", Reason: fmt.Sprintf("larger than %d bytes", MaxBodyBytes)}
		}
		return &InvalidError{Field: "body", Reason: "want a JSON object {\"name\",\"scopes\",\"expiresIn\",\"rateLimit\"}"}
	}
	if dec.More() {
		return &InvalidError{Field: "body", Reason: "trailing data after the JSON object"}
	}
	life, err := ParseExpiresIn(b.ExpiresIn)
	if err != nil {
		return err
	}
	req := CreateRequest{Name: b.Name, Scopes: b.Scopes, ExpiresIn: life}
	if b.RateLimit != nil {
		req.RateLimit = &auth.RateLimit{PerSecond: b.RateLimit.PerSecond, Burst: b.RateLimit.Burst}
	}
	t, secret, err := a.m.Create(r.Context(), id, req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/tokens/"+t.ID)
	writeJSON(w, http.StatusCreated, createdBody{Token: t, Secret: secret})
	return nil
}

func (a *api) list(w http.ResponseWriter, r *http.Request, id *auth.Identity) error {
	q := r.URL.Query()
	n := DefaultPageSize
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			return &InvalidError{Field: "n", Reason: "want a positive integer"}
		}
		n = min(v, MaxPageSize)
	}
	last := q.Get("last")
	page, more, err := a.m.List(r.Context(), id, last, n)
	if err != nil {
		return err
	}
	if more && len(page) > 0 {
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {page[len(page)-1].ID}}
		w.Header().Set("Link", fmt.Sprintf(`</api/v1/tokens?%s>; rel="next"`, next.Encode()))
	}
	writeJSON(w, http.StatusOK, map[string][]*Token{"tokens": page})
	return nil
}

func (a *api) get(w http.ResponseWriter, r *http.Request, id *auth.Identity) error {
	t, err := a.m.Get(r.Context(), id, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *api) revoke(w http.ResponseWriter, r *http.Request, id *auth.Identity) error {
	if err := a.m.Revoke(r.Context(), id, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
