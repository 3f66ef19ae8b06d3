package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/internal/ociname"
)

// Defaults of the token service.
const (
	// DefaultService is the service name (the tokens' audience).
	DefaultService = "berth"
	// DefaultIssuer is the issuer name.
	DefaultIssuer = "berth"
	// DefaultLifetime is the lifetime of access tokens.
	DefaultLifetime = 5 * time.Minute
	// MaxLifetime bounds Options.Lifetime.
	MaxLifetime = time.Hour
	// DefaultRefreshLifetime is the lifetime of refresh tokens.
	DefaultRefreshLifetime = 24 * time.Hour
)

// Limits on token requests.
const (
	maxScopes      = 32
	maxScopeLength = 512
	maxFormBytes   = 16 << 10
)

// Revalidator returns the current identity of a subject named in a refresh
// token, or an error matching auth.ErrUnauthenticated when the subject may
// no longer obtain tokens (unknown, revoked, expired). *tokens.Manager and
// *basic.Static implement it.
type Revalidator interface {
	Revalidate(ctx context.Context, subject string) (*auth.Identity, error)
}

// Revalidators tries each Revalidator in turn.
type Revalidators []Revalidator

// Revalidate implements Revalidator: the first identity returned wins;
// errors other than auth.ErrUnauthenticated stop the search.
func (rs Revalidators) Revalidate(ctx context.Context, subject string) (*auth.Identity, error) {
	for _, r := range rs {
		id, err := r.Revalidate(ctx, subject)
		if err == nil && id != nil {
			return id, nil
		}
		if err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
			return nil, err
		}
	}
	return nil, auth.ErrUnauthenticated
}

// Options configures a Service. The zero value of every field is safe.
type Options struct {
	// Service is the service name clients send and the tokens' audience;
	// it must equal the registry's Options.Service. Default "berth".
	Service string
	// Issuer is the tokens' issuer. Default "berth".
	Issuer string
	// Lifetime is the lifetime of access tokens, never longer than the
	// credentials they were issued for. Default 5 minutes; at most
	// MaxLifetime.
	Lifetime time.Duration
	// RefreshLifetime is the lifetime of refresh tokens (issued for
	// offline_token=true and access_type=offline). Default 24 hours;
	// negative disables refresh tokens.
	RefreshLifetime time.Duration
	// Revalidator checks, on every refresh, that the refresh token's
	// subject may still obtain tokens, and lets the Verifier stop access
	// tokens whose subject was revoked (see VerifierOptions.Revalidator).
	// Nil disables refresh tokens and that check.
	Revalidator Revalidator
	// RevalidateEvery configures how long the Verifier trusts a subject
	// between checks (see VerifierOptions.RevalidateEvery).
	RevalidateEvery time.Duration
	// Leeway configures the Verifier that Service.Verifier returns (see
	// VerifierOptions.Leeway).
	Leeway time.Duration
	// UploadGrace configures that Verifier's upload grace (see
	// VerifierOptions.UploadGrace).
	UploadGrace time.Duration
	// CacheBytes bounds that Verifier's cache of verified tokens (see
	// VerifierOptions.CacheBytes).
	CacheBytes int64
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives server errors. Default slog.Default().
	Logger *slog.Logger
}

// String describes the effective options for start-up logs.
func (o Options) String() string {
	return fmt.Sprintf("token{service=%q issuer=%q lifetime=%s refreshLifetime=%s refresh=%v leeway=%s uploadGrace=%s verifyCacheBytes=%d revalidateEvery=%s}",
		o.Service, o.Issuer, o.Lifetime, o.RefreshLifetime, o.Revalidator != nil && o.RefreshLifetime > 0, o.Leeway, o.UploadGrace, o.CacheBytes, revalidateEvery(o))
}

// Service is the Docker token service: an http.Handler for the realm of
// the registry's Bearer challenges.
type Service struct {
	key      *Key
	signer   jose.Signer
	authn    auth.Authenticator
	authz    auth.Authorizer
	opts     Options
	verifier *Verifier
}

// NewService returns a token service signing with key, identifying clients
// with authn (HTTP Basic; anonymous requests get what authz grants
// auth.Anonymous) and granting what authz decides. A nil opts uses the
// defaults.
func NewService(key *Key, authn auth.Authenticator, authz auth.Authorizer, opts *Options) (*Service, error) {
	if key == nil || authn == nil || authz == nil {
		return nil, errors.New("token: NewService needs a key, an authenticator and an authorizer")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Lifetime < 0 || o.Lifetime > MaxLifetime {
		return nil, fmt.Errorf("token: Options.Lifetime must be between 0 and %s", MaxLifetime)
	}
	if o.Service == "" {
		o.Service = DefaultService
	}
	if o.Issuer == "" {
		o.Issuer = DefaultIssuer
	}
	if o.Lifetime == 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.RefreshLifetime == 0 {
		o.RefreshLifetime = DefaultRefreshLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.alg, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	v, err := NewVerifier(&VerifierOptions{Service: o.Service, Issuer: o.Issuer, Leeway: o.Leeway, UploadGrace: o.UploadGrace, CacheBytes: o.CacheBytes,
		Revalidator: o.Revalidator, RevalidateEvery: o.RevalidateEvery, Now: o.Now}, key.Public())
	if err != nil {
		return nil, err
	}
	o.Leeway, o.UploadGrace, o.CacheBytes, o.RevalidateEvery = v.opts.Leeway, v.opts.UploadGrace, v.opts.CacheBytes, v.opts.RevalidateEvery
	return &Service{key: key, signer: signer, authn: authn, authz: authz, opts: o, verifier: v}, nil
}

// Options returns the effective options.
func (s *Service) Options() Options { return s.opts }

// Verifier returns the verifier of the tokens this service issues, for
// bearer.New.
func (s *Service) Verifier() *Verifier { return s.verifier }

// Response is the token endpoint's answer.
type Response struct {
	// Token is the JWT.
	Token string `json:"token"`
	// AccessToken is the same JWT, under the OAuth2 name.
	AccessToken string `json:"access_token"`
	// ExpiresIn is the token's lifetime in seconds.
	ExpiresIn int `json:"expires_in"`
	// IssuedAt is when it was issued, in RFC 3339.
	IssuedAt string `json:"issued_at"`
	// RefreshToken, when requested and enabled, obtains further tokens
	// with grant_type=refresh_token.
	RefreshToken string `json:"refresh_token,omitempty"`
	// Scope lists the granted scopes, space-separated (POST only).
	Scope string `json:"scope,omitempty"`
}

// ParseScopes parses the scope parameters of a token request: each value
// holds one or more space-separated scopes. Names may not contain pattern
// characters, and repository names must be valid repository names.
func ParseScopes(values []string) ([]auth.Scope, error) {
	var out []auth.Scope
	for _, v := range values {
		for f := range strings.FieldsSeq(v) {
			if len(out) == maxScopes {
				return nil, &auth.ScopeError{Scope: f, Reason: fmt.Sprintf("more than %d scopes", maxScopes)}
			}
			if len(f) > maxScopeLength {
				return nil, &auth.ScopeError{Scope: f, Reason: "too long"}
			}
			sc, err := auth.ParseScope(f)
			if err != nil {
				return nil, err
			}
			if auth.IsPattern(sc.Name) {
				return nil, &auth.ScopeError{Scope: f, Reason: "patterns are not allowed in requested scopes"}
			}
			if sc.Type == auth.TypeRepository {
				if err := ociname.ValidateName(sc.Name); err != nil {
					return nil, &auth.ScopeError{Scope: f, Reason: "invalid repository name"}
				}
			}
			out = append(out, sc)
		}
	}
	return out, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Issue returns tokens for id granting what the Authorizer grants it among
// requested, and a refresh token when offline is set and refresh tokens are
// enabled for a non-anonymous identity. Tokens never outlive id.ExpiresAt.
func (s *Service) Issue(ctx context.Context, id *auth.Identity, requested []auth.Scope, offline bool) (*Response, error) {
	if id == nil {
		id = auth.Anonymous
	}
	if id.Grace {
		return nil, unauth("expired credentials")
	}
	now := s.opts.Now().Truncate(time.Second)
	exp := now.Add(s.opts.Lifetime)
	if !id.ExpiresAt.IsZero() {
		if !id.ExpiresAt.After(now) {
			return nil, unauth("expired credentials")
		}
		if id.ExpiresAt.Before(exp) {
			exp = id.ExpiresAt
		}
	}
	access := []accessEntry{}
	var granted []string
	if len(requested) > 0 {
		got, err := s.authz.Authorize(ctx, id, requested)
		if err != nil {
			return nil, fmt.Errorf("token: authorize: %w", err)
		}
		for _, g := range got {
			if len(g.Actions) == 0 {
				continue
			}
			access = append(access, accessEntry{Type: g.Type, Name: g.Name, Actions: g.Actions})
			granted = append(granted, g.String())
		}
	}
	std := jwt.Claims{
		Issuer:    s.opts.Issuer,
		Subject:   id.Subject,
		Audience:  jwt.Audience{s.opts.Service},
		Expiry:    jwt.NewNumericDate(exp),
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
		ID:        randomID(),
	}
	priv := berthClaims{Access: access}
	if l := id.RateLimit; l != nil && !id.IsAnonymous() {
		priv.Rate = &rateClaim{PerSecond: l.PerSecond, Burst: l.Burst}
	}
	raw, err := jwt.Signed(s.signer).Claims(std).Claims(priv).Serialize()
	if err != nil {
		return nil, fmt.Errorf("token: sign: %w", err)
	}
	resp := &Response{Token: raw, AccessToken: raw, ExpiresIn: int(exp.Sub(now) / time.Second),
		IssuedAt: now.UTC().Format(time.RFC3339), Scope: strings.Join(granted, " ")}
	if offline && s.refreshEnabled() && !id.IsAnonymous() {
		rexp := now.Add(s.opts.RefreshLifetime)
		if !id.ExpiresAt.IsZero() {
			if id.ExpiresAt.Before(rexp) {
				rexp = id.ExpiresAt
			}
		}
		std.Expiry, std.ID = jwt.NewNumericDate(rexp), randomID()
		resp.RefreshToken, err = jwt.Signed(s.signer).Claims(std).Claims(berthClaims{Use: "refresh"}).Serialize()
		if err != nil {
			return nil, fmt.Errorf("token: sign: %w", err)
		}
	}
	return resp, nil
}

func (s *Service) refreshEnabled() bool {
	return s.opts.Revalidator != nil && s.opts.RefreshLifetime > 0
}

// ServeHTTP implements http.Handler: GET with query parameters service,
// scope (repeated), account and offline_token, authenticated with HTTP
// Basic or anonymous; POST with an OAuth2 form (grant_type password with
// username and password, or refresh_token with refresh_token; service,
// scope, client_id, access_type).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	var resp *Response
	var err error
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		resp, err = s.get(r)
		if resp != nil {
			resp.Scope = ""
		}
	case http.MethodPost:
		resp, err = s.post(r)
	default:
		w.Header().Set("Allow", "GET, POST")
		s.writeError(w, r, http.StatusMethodNotAllowed, "unsupported", "METHOD_NOT_ALLOWED", "method not allowed")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(resp)
	}
}

// requestError is a token request the client got wrong.
type requestError struct{ oauth, code, msg string }

func (e *requestError) Error() string { return "token: " + e.msg }

func (s *Service) checkService(svc string) error {
	if svc != "" && svc != s.opts.Service {
		return &requestError{"invalid_request", "INVALID_REQUEST", fmt.Sprintf("unknown service (this is %q)", s.opts.Service)}
	}
	return nil
}

func (s *Service) get(r *http.Request) (*Response, error) {
	q := r.URL.Query()
	if err := s.checkService(q.Get("service")); err != nil {
		return nil, err
	}
	scopes, err := ParseScopes(q["scope"])
	if err != nil {
		return nil, err
	}
	id, err := s.authn.Authenticate(r)
	if err != nil {
		return nil, err
	}
	return s.Issue(r.Context(), id, scopes, q.Get("offline_token") == "true")
}

func (s *Service) post(r *http.Request) (*Response, error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, &requestError{"invalid_request", "INVALID_REQUEST", "want an application/x-www-form-urlencoded body"}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, &requestError{"invalid_request", "INVALID_REQUEST", "malformed form"}
	}
	f := r.PostForm
	if err := s.checkService(f.Get("service")); err != nil {
		return nil, err
	}
	scopes, err := ParseScopes(f["scope"])
	if err != nil {
		return nil, err
	}
	offline := f.Get("access_type") == "offline"
	var id *auth.Identity
	switch f.Get("grant_type") {
	case "password":
		user, pw := f.Get("username"), f.Get("password")
		if user == "" || strings.ContainsRune(user, ':') {
			return nil, auth.ErrUnauthenticated
		}
		r2 := r.Clone(r.Context())
		r2.Header.Del("Authorization")
		r2.SetBasicAuth(user, pw)
		if id, err = s.authn.Authenticate(r2); err != nil {
			return nil, err
		}
		if id == nil || id.IsAnonymous() {
			return nil, auth.ErrUnauthenticated
		}
	case "refresh_token":
		if !s.refreshEnabled() {
			return nil, &requestError{"unsupported_grant_type", "UNSUPPORTED", "refresh tokens are disabled"}
		}
		rt := f.Get("refresh_token")
		if rt == "" || len(rt) > 8<<10 {
			return nil, &requestError{"invalid_request", "INVALID_REQUEST", "refresh_token is required"}
		}
		sub, err := s.verifier.verifyRefresh(rt)
		if err != nil {
			return nil, &requestError{"invalid_grant", "UNAUTHORIZED", "invalid refresh token"}
		}
		if id, err = s.opts.Revalidator.Revalidate(r.Context(), sub); err != nil {
			if errors.Is(err, auth.ErrUnauthenticated) {
				return nil, &requestError{"invalid_grant", "UNAUTHORIZED", "invalid refresh token"}
			}
			return nil, err
		}
		resp, err := s.Issue(r.Context(), id, scopes, false)
		if err != nil {
			return nil, err
		}
		resp.RefreshToken = rt
		return resp, nil
	default:
		return nil, &requestError{"unsupported_grant_type", "UNSUPPORTED", "grant_type must be password or refresh_token"}
	}
	return s.Issue(r.Context(), id, scopes, offline)
}

type errorBody struct {
	Error       string     `json:"error,omitempty"`
	Description string     `json:"error_description,omitempty"`
	Errors      []apiError `json:"errors"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Service) writeError(w http.ResponseWriter, r *http.Request, status int, oauth, code, msg string) {
	b := errorBody{Errors: []apiError{{Code: code, Message: msg}}}
	if r.Method == http.MethodPost {
		b.Error, b.Description = oauth, msg
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	var re *requestError
	var se *auth.ScopeError
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &re):
		status := http.StatusBadRequest
		if re.code == "UNAUTHORIZED" {
			status = http.StatusUnauthorized
		}
		s.writeError(w, r, status, re.oauth, re.code, re.msg)
	case errors.As(err, &se):
		s.writeError(w, r, http.StatusBadRequest, "invalid_scope", "INVALID_SCOPE", se.Error())
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
		s.writeError(w, r, http.StatusTooManyRequests, "invalid_request", "TOO_MANY_REQUESTS", "too many requests; retry later")
	case errors.Is(err, auth.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", s.opts.Service))
		s.writeError(w, r, http.StatusUnauthorized, "invalid_grant", "UNAUTHORIZED", "authentication required")
	default:
		if c := errcode.Of(err); c != errcode.Canceled {
			s.opts.Logger.Error("token: request failed", "method", r.Method, "err", err)
		}
		s.writeError(w, r, http.StatusInternalServerError, "server_error", "INTERNAL_ERROR", "internal server error")
	}
}

// revalidateEvery describes how often the Verifier re-checks subjects.
func revalidateEvery(o Options) string {
	switch {
	case o.Revalidator == nil:
		return "off"
	case o.RevalidateEvery < 0:
		return "always"
	}
	return o.RevalidateEvery.String()
}
