package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/storage/driver"
)

// Management scope: "registry:tokens:create,list,delete".
const (
	// ScopeName is the registry scope name of token management.
	ScopeName = "tokens"
	// ActionCreate, ActionList and ActionDelete are its actions.
	ActionCreate = "create"
	ActionList   = "list"
	ActionDelete = "delete"
)

// UsernamePrefix starts the user name of every registry token.
const UsernamePrefix = "token-"

// SecretPrefix starts every registry token secret.
const SecretPrefix = "berth_"

// Limits on what a token may hold.
const (
	MaxNameLength = 100
	MaxScopes     = 100
)

// ErrPermission reports a management request beyond the caller's rights.
var ErrPermission error = &errcode.Error{Code: errcode.PermissionDenied, Msg: "tokens: permission denied"}

// Options configures a Manager. The zero value of every field is safe.
type Options struct {
	// DefaultExpiry is the lifetime of tokens created without one.
	// Default 90 days.
	DefaultExpiry time.Duration
	// MaxExpiry bounds every token's lifetime. Default 366 days.
	MaxExpiry time.Duration
	// UploadGrace is how long after expiry a token may still finish an
	// upload session started before it expired (see
	// auth.WithUploadGrace). Default auth.DefaultUploadGrace; negative
	// disables.
	UploadGrace time.Duration
	// CacheTTL is how long a successful secret check is remembered.
	// Default 1 minute; negative disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the remembered checks. Default 10000.
	CacheSize int
	// MaxConcurrentHashes bounds the argon2id computations running at
	// once (each takes 19 MiB); others wait their turn. Default 4.
	MaxConcurrentHashes int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives warnings (such as unparsable stored scopes).
	// Default slog.Default().
	Logger *slog.Logger
}

// String describes the effective options for start-up logs.
func (o Options) String() string {
	return fmt.Sprintf("tokens{defaultExpiry=%s maxExpiry=%s uploadGrace=%s cacheTTL=%s cacheSize=%d maxConcurrentHashes=%d hash=argon2id(m=%dKiB,t=%d,p=%d)}",
		o.DefaultExpiry, o.MaxExpiry, o.UploadGrace, o.CacheTTL, o.CacheSize, o.MaxConcurrentHashes, argonMemory, argonTime, argonThreads)
}

func (o *Options) validate() error {
	if o.DefaultExpiry < 0 || o.MaxExpiry < 0 || o.CacheSize < 0 || o.MaxConcurrentHashes < 0 {
		return errors.New("tokens: Options.DefaultExpiry, MaxExpiry, CacheSize and MaxConcurrentHashes must not be negative")
	}
	if o.DefaultExpiry > 0 && o.MaxExpiry > 0 && o.DefaultExpiry > o.MaxExpiry {
		return errors.New("tokens: Options.DefaultExpiry exceeds MaxExpiry")
	}
	return nil
}

// Manager creates, lists, revokes and verifies registry tokens.
type Manager struct {
	store driver.Tokens
	opts  Options

	hashes chan struct{} // semaphore of argon2id computations

	mu    sync.Mutex
	cache map[string]cached // by token ID
}

type cached struct {
	secret [32]byte // SHA-256 of the secret
	hash   string   // the stored hash it was checked against
	until  time.Time
}

// New returns a Manager over store; a nil opts uses the defaults.
func New(store driver.Tokens, opts *Options) (*Manager, error) {
	if store == nil {
		return nil, errors.New("tokens: New needs a store")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.MaxExpiry == 0 {
		o.MaxExpiry = 366 * 24 * time.Hour
	}
	if o.DefaultExpiry == 0 {
		o.DefaultExpiry = min(90*24*time.Hour, o.MaxExpiry)
	}
	if o.UploadGrace == 0 {
		o.UploadGrace = auth.DefaultUploadGrace
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = time.Minute
	}
	if o.CacheSize == 0 {
		o.CacheSize = 10000
	}
	if o.MaxConcurrentHashes == 0 {
		o.MaxConcurrentHashes = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Manager{store: store, opts: o, cache: map[string]cached{}, hashes: make(chan struct{}, o.MaxConcurrentHashes)}, nil
}

// slowHash runs f, an argon2id computation, when a slot is free.
func (m *Manager) slowHash(ctx context.Context, f func()) error {
	select {
	case m.hashes <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-m.hashes }()
	f()
	return nil
}

// Options returns the effective options.
func (m *Manager) Options() Options { return m.opts }

// Token is a registry token as the management API shows it: everything but
// the secret and its hash.
type Token struct {
	// ID identifies the token in the API.
	ID string `json:"id"`
	// Name is the label given at creation.
	Name string `json:"name"`
	// Username is the user name the token logs in as.
	Username string `json:"username"`
	// Scopes are the token's scope strings.
	Scopes []string `json:"scopes"`
	// CreatedBy is the subject that created the token.
	CreatedBy string `json:"createdBy"`
	// CreatedAt is when it was created.
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt is when it expires.
	ExpiresAt time.Time `json:"expiresAt"`
	// RevokedAt is when it was revoked; absent while it is not.
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	// RateLimit is the token's own request rate limit; absent when the
	// server's default per-identity limit applies.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
}

// RateLimit is a token's request rate limit as the API shows it.
type RateLimit struct {
	// PerSecond is the sustained rate, in requests per second.
	PerSecond float64 `json:"perSecond"`
	// Burst is how many requests may come at once.
	Burst int `json:"burst"`
}

// Bounds of a token's rate limit.
const (
	MaxRatePerSecond = 1e6
	MaxRateBurst     = 1e6
)

func view(t *driver.Token) *Token {
	v := &Token{ID: t.ID, Name: t.Name, Username: t.Username, Scopes: slices.Clone(t.Scopes),
		CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC()}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if !t.RevokedAt.IsZero() {
		r := t.RevokedAt.UTC()
		v.RevokedAt = &r
	}
	if t.RatePerSecond > 0 {
		v.RateLimit = &RateLimit{PerSecond: t.RatePerSecond, Burst: t.RateBurst}
	}
	return v
}

// CreateRequest describes a token to create.
type CreateRequest struct {
	// Name is a label for people, 1 to MaxNameLength printable
	// characters.
	Name string
	// Scopes are scope strings, 1 to MaxScopes of them.
	Scopes []string
	// ExpiresIn is the lifetime: zero for Options.DefaultExpiry; at most
	// Options.MaxExpiry.
	ExpiresIn time.Duration
	// RateLimit, when not nil, is the token's own request rate limit
	// (rate at most MaxRatePerSecond, burst at most MaxRateBurst).
	// A creator with a rate limit of its own (a delegated manager's
	// token) passes it on: the new token's limit may not exceed it, and
	// is it when RateLimit is nil.
	RateLimit *auth.RateLimit
}

// InvalidError reports an invalid CreateRequest field other than a scope.
type InvalidError struct {
	// Field is the request field ("name", "scopes", "expiresIn", "body").
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error names the field and the reason.
func (e *InvalidError) Error() string { return "tokens: invalid " + e.Field + ": " + e.Reason }

// Unwrap returns driver.ErrInvalidArgument.
func (e *InvalidError) Unwrap() error { return driver.ErrInvalidArgument }

// ValidateScope parses s and checks that it is a scope a token may hold:
// a repository name pattern (auth.ValidatePattern) with actions among
// pull, push, delete and "*", registry:catalog:*, or registry:tokens with
// actions among create, list, delete and "*".
func ValidateScope(s string) (auth.Scope, error) {
	sc, err := auth.ParseScope(s)
	if err != nil {
		return sc, err
	}
	bad := func(r string) (auth.Scope, error) { return auth.Scope{}, &auth.ScopeError{Scope: s, Reason: r} }
	var allowed []string
	switch {
	case sc.Type == auth.TypeRepository:
		if auth.ValidatePattern(sc.Name) != nil {
			return bad("invalid repository name pattern")
		}
		allowed = []string{auth.Pull, auth.Push, auth.Delete, auth.All}
	case sc.Type == auth.TypeRegistry && sc.Name == "catalog":
		allowed = []string{auth.All}
	case sc.Type == auth.TypeRegistry && sc.Name == ScopeName:
		allowed = []string{ActionCreate, ActionList, ActionDelete, auth.All}
	default:
		return bad("unknown resource (want repository:<pattern>, registry:catalog or registry:tokens)")
	}
	for _, a := range sc.Actions {
		if !slices.Contains(allowed, a) {
			return bad(fmt.Sprintf("action %q not allowed (want %s)", a, strings.Join(allowed, ", ")))
		}
	}
	return sc, nil
}

// unbounded reports whether id is an administrator not bound by Scopes.
func unbounded(id *auth.Identity) bool { return id != nil && id.Admin && id.Scopes == nil }

// holds reports whether the held scopes include every action of want, with
// want's name pattern no wider than theirs (see the package doc).
func holds(held []auth.Scope, want auth.Scope) bool {
	for _, a := range want.Actions {
		ok := false
		for _, h := range held {
			if h.Type != want.Type || !h.Allows(a) {
				continue
			}
			if !auth.IsPattern(want.Name) && auth.Match(h.Name, want.Name) {
				ok = true
			} else if h.Name == want.Name {
				ok = true
			} else if h.Name == "**" {
				ok = true
			} else if prefix, found := strings.CutSuffix(h.Name, "/**"); found && !auth.IsPattern(prefix) && strings.HasPrefix(want.Name, prefix+"/") {
				ok = true
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Create makes a token for req on behalf of creator, who must be allowed
// to create tokens (the API asks its Authorizer; direct callers decide
// themselves), and returns it with its secret, which is not kept.
// Delegated managers are bound as the package doc says (ErrPermission).
func (m *Manager) Create(ctx context.Context, creator *auth.Identity, req CreateRequest) (*Token, string, error) {
	if creator.IsAnonymous() {
		return nil, "", auth.ErrUnauthenticated
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > MaxNameLength || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, "", &InvalidError{Field: "name", Reason: fmt.Sprintf("want 1 to %d printable characters", MaxNameLength)}
	}
	if len(req.Scopes) == 0 || len(req.Scopes) > MaxScopes {
		return nil, "", &InvalidError{Field: "scopes", Reason: fmt.Sprintf("want 1 to %d scopes", MaxScopes)}
	}
	scopes := make([]string, 0, len(req.Scopes))
	for _, s := range req.Scopes {
		sc, err := ValidateScope(s)
		if err != nil {
			return nil, "", err
		}
		if !unbounded(creator) && !holds(creator.Scopes, sc) {
			return nil, "", fmt.Errorf("%w: scope %q is outside the caller's own scopes", ErrPermission, sc.String())
		}
		if c := sc.String(); !slices.Contains(scopes, c) {
			scopes = append(scopes, c)
		}
	}
	life := req.ExpiresIn
	if life == 0 {
		life = m.opts.DefaultExpiry
	}
	if life < 0 || life > m.opts.MaxExpiry {
		return nil, "", &InvalidError{Field: "expiresIn", Reason: fmt.Sprintf("want a positive duration of at most %s", m.opts.MaxExpiry)}
	}
	rate, err := tokenRate(creator, req.RateLimit)
	if err != nil {
		return nil, "", err
	}
	now := m.opts.Now().UTC().Truncate(time.Second)
	exp := now.Add(life)
	if !unbounded(creator) && !creator.ExpiresAt.IsZero() && exp.After(creator.ExpiresAt) {
		return nil, "", fmt.Errorf("%w: the token would outlive the caller's credentials (%s)", ErrPermission, creator.ExpiresAt.UTC().Format(time.RFC3339))
	}
	idb := make([]byte, 12)
	if _, err := rand.Read(idb); err != nil {
		return nil, "", err
	}
	id := hex.EncodeToString(idb)
	secretBody, err := randomString(32)
	if err != nil {
		return nil, "", err
	}
	secret := SecretPrefix + secretBody
	var hash []byte
	if herr := m.slowHash(ctx, func() { hash, err = hashSecret(secret) }); herr != nil {
		return nil, "", herr
	}
	if err != nil {
		return nil, "", err
	}
	t := &driver.Token{ID: id, Name: name, Username: UsernamePrefix + id, SecretHash: hash, Scopes: scopes,
		CreatedBy: creator.Subject, CreatedAt: now, ExpiresAt: exp}
	if rate != nil {
		t.RatePerSecond, t.RateBurst = rate.PerSecond, rate.Burst
	}
	v := view(t)
	data, _ := json.Marshal(v)
	ev := driver.Event{Type: "dev.berth.token.created", Subject: id, Data: data, CreatedAt: now}
	if err := m.store.CreateToken(ctx, t, ev); err != nil {
		return nil, "", fmt.Errorf("tokens: create token %s: %w", id, err)
	}
	return v, secret, nil
}

// tokenRate returns the rate limit of a token that creator asks for with
// req: checked, and bounded by the creator's own.
func tokenRate(creator *auth.Identity, req *auth.RateLimit) (*auth.RateLimit, error) {
	if req != nil {
		if req.Validate() != nil || req.PerSecond > MaxRatePerSecond || req.Burst > MaxRateBurst {
			return nil, &InvalidError{Field: "rateLimit", Reason: fmt.Sprintf("want a rate in (0, %g] per second and a burst in [1, %d]",
				float64(MaxRatePerSecond), int(MaxRateBurst))}
		}
	}
	own := creator.RateLimit
	switch {
	case own == nil || unbounded(creator):
		return req, nil
	case req == nil:
		l := *own
		return &l, nil
	case req.PerSecond > own.PerSecond || req.Burst > own.Burst:
		return nil, fmt.Errorf("%w: the rate limit exceeds the caller's own (%g per second, burst %d)", ErrPermission, own.PerSecond, own.Burst)
	}
	return req, nil
}

// visible reports whether caller may see or revoke t.
func visible(caller *auth.Identity, t *driver.Token) bool {
	return unbounded(caller) || (caller != nil && caller.Subject != "" && t.CreatedBy == caller.Subject)
}

// Get returns the token with the ID, if caller may see it; driver.ErrNotFound
// otherwise.
func (m *Manager) Get(ctx context.Context, caller *auth.Identity, id string) (*Token, error) {
	t, err := m.store.GetToken(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("tokens: get token: %w", err)
	}
	if !visible(caller, t) {
		return nil, fmt.Errorf("tokens: get token: %w", driver.ErrNotFound)
	}
	return view(t), nil
}

// List returns up to limit tokens (at least 1) that caller may see, in ID
// order after the ID "after", and whether more may follow.
func (m *Manager) List(ctx context.Context, caller *auth.Identity, after string, limit int) ([]*Token, bool, error) {
	if limit < 1 {
		return nil, false, fmt.Errorf("tokens: list: %w", driver.ErrInvalidArgument)
	}
	out := []*Token{}
	for {
		page, more, err := m.store.ListTokens(ctx, after, limit)
		if err != nil {
			return nil, false, fmt.Errorf("tokens: list: %w", err)
		}
		for i, t := range page {
			if !visible(caller, t) {
				continue
			}
			out = append(out, view(t))
			if len(out) == limit {
				return out, more || i < len(page)-1, nil
			}
		}
		if !more || len(page) == 0 {
			return out, false, nil
		}
		after = page[len(page)-1].ID
	}
}

// Revoke revokes the token with the ID, if caller may see it;
// driver.ErrNotFound otherwise. Revoking a revoked token succeeds.
func (m *Manager) Revoke(ctx context.Context, caller *auth.Identity, id string) error {
	t, err := m.store.GetToken(ctx, id)
	if err != nil {
		return fmt.Errorf("tokens: revoke token: %w", err)
	}
	if !visible(caller, t) {
		return fmt.Errorf("tokens: revoke token: %w", driver.ErrNotFound)
	}
	now := m.opts.Now().UTC()
	data, _ := json.Marshal(map[string]string{"id": id, "username": t.Username, "revokedBy": caller.Subject})
	if err := m.store.RevokeToken(ctx, id, now, driver.Event{Type: "dev.berth.token.revoked", Subject: id, Data: data, CreatedAt: now}); err != nil {
		return fmt.Errorf("tokens: revoke token: %w", err)
	}
	m.mu.Lock()
	delete(m.cache, id)
	m.mu.Unlock()
	return nil
}

// Verify implements basic.Verifier: it checks a token's user name and
// secret and returns its identity. Unknown users, wrong secrets, revoked
// and expired tokens are all auth.ErrUnauthenticated; an expired token is
// accepted, restricted, only to finish an upload session as described at
// auth.WithUploadGrace.
func (m *Manager) Verify(ctx context.Context, user, secret string) (*auth.Identity, error) {
	if !strings.HasPrefix(user, UsernamePrefix) || len(user) > 64 || len(secret) > 256 {
		return nil, auth.ErrUnauthenticated
	}
	t, err := m.store.GetTokenByUsername(ctx, user)
	if errors.Is(err, driver.ErrNotFound) {
		if herr := m.slowHash(ctx, func() { _, _ = checkSecret(dummyHash(), secret) }); herr != nil {
			return nil, herr
		}
		return nil, auth.ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("tokens: verify: %w", err)
	}
	if !m.checkCached(t, secret) {
		var ok bool
		if herr := m.slowHash(ctx, func() { ok, err = checkSecret(t.SecretHash, secret) }); herr != nil {
			return nil, herr
		}
		if err != nil {
			m.opts.Logger.Warn("tokens: unusable secret hash", "token", t.ID)
			return nil, auth.ErrUnauthenticated
		}
		if !ok {
			return nil, auth.ErrUnauthenticated
		}
		m.remember(t, secret)
	}
	return m.usable(ctx, t)
}

func (m *Manager) checkCached(t *driver.Token, secret string) bool {
	if m.opts.CacheTTL < 0 {
		return false
	}
	m.mu.Lock()
	c, ok := m.cache[t.ID]
	m.mu.Unlock()
	if !ok || c.hash != string(t.SecretHash) || m.opts.Now().After(c.until) {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], c.secret[:]) == 1
}

func (m *Manager) remember(t *driver.Token, secret string) {
	if m.opts.CacheTTL < 0 {
		return
	}
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.cache) >= m.opts.CacheSize {
		for k, c := range m.cache {
			if now.After(c.until) {
				delete(m.cache, k)
			}
		}
		if len(m.cache) >= m.opts.CacheSize {
			clear(m.cache)
		}
	}
	m.cache[t.ID] = cached{secret: sha256.Sum256([]byte(secret)), hash: string(t.SecretHash), until: now.Add(m.opts.CacheTTL)}
}

// Revalidate returns the current identity of a token's user name, checking
// that the token still exists, is not revoked and has not expired, without
// its secret; an expired token is accepted, restricted, only under an
// upload grace in ctx, as in Verify. The Docker token service calls it
// when a client presents a refresh token, and its Verifier to stop access
// tokens issued for a token revoked since. Users that are not registry
// tokens are auth.ErrUnauthenticated.
func (m *Manager) Revalidate(ctx context.Context, user string) (*auth.Identity, error) {
	if !strings.HasPrefix(user, UsernamePrefix) {
		return nil, auth.ErrUnauthenticated
	}
	t, err := m.store.GetTokenByUsername(ctx, user)
	if errors.Is(err, driver.ErrNotFound) {
		return nil, auth.ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("tokens: revalidate: %w", err)
	}
	return m.usable(ctx, t)
}

// usable returns the identity of token t if it may be used now: not
// revoked, and not expired, unless the request finishes an upload its
// holder started within the upload grace, which then restricts its
// scopes to that upload's repository.
func (m *Manager) usable(ctx context.Context, t *driver.Token) (*auth.Identity, error) {
	if !t.RevokedAt.IsZero() {
		return nil, auth.ErrUnauthenticated
	}
	id := m.identity(t)
	if now := m.opts.Now(); !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		g, ok := auth.UploadGraceFrom(ctx)
		if !ok || !g.HeldBy(id.Subject) || !g.Allows(t.CreatedAt, t.ExpiresAt, now, m.opts.UploadGrace) {
			return nil, auth.ErrUnauthenticated
		}
		id.Scopes = g.Restrict(id.Scopes)
		id.Grace = true
	}
	return id, nil
}

// identity is the identity of token t: its user name and its scopes (any
// stored scope that no longer parses is dropped).
func (m *Manager) identity(t *driver.Token) *auth.Identity {
	id := &auth.Identity{Subject: t.Username, Scopes: []auth.Scope{}, ExpiresAt: t.ExpiresAt}
	if l := (auth.RateLimit{PerSecond: t.RatePerSecond, Burst: t.RateBurst}); l.Validate() == nil {
		id.RateLimit = &l
	}
	for _, s := range t.Scopes {
		sc, err := auth.ParseScope(s)
		if err != nil {
			m.opts.Logger.Warn("tokens: ignoring an unparsable stored scope", "token", t.ID)
			continue
		}
		id.Scopes = append(id.Scopes, sc)
	}
	return id
}
