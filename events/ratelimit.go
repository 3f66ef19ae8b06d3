package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/ratelimit"
)

// Limiter decides whether a request may proceed. Implement it over a
// shared store (Redis, a database) so that the nodes of a cluster share
// limits; NewMemoryLimiter is the in-process one.
type Limiter interface {
	// Allow takes cost units from key's allowance. It returns true when
	// they were available; otherwise false and how long until they will
	// be (0 when unknown). Keys are "id:"+identity or "addr:"+address
	// (IdentityKey, AddressKey). Allow is called concurrently; an error
	// means the limiter could not decide.
	Allow(ctx context.Context, key string, cost int) (ok bool, retryAfter time.Duration, err error)
}

// LimitAllower is a Limiter that also applies a limit the caller gives:
// an identity's own (auth.Identity.RateLimit), such as the rate stored
// with its registry token. ObserveAuthenticator uses it when the Limiter
// implements it. MemoryLimiter and SharedLimiter do.
type LimitAllower interface {
	// AllowLimit is Allow under limit l instead of the one the Limiter
	// would choose for key; the zero Limit allows everything.
	AllowLimit(ctx context.Context, key string, l Limit, cost int) (ok bool, retryAfter time.Duration, err error)
}

// IdentityKey and AddressKey build the keys the rate limit middleware
// passes to a Limiter.
func IdentityKey(identity string) string { return "id:" + identity }

// AddressKey returns the Limiter key of a client address.
func AddressKey(addr string) string { return "addr:" + addr }

// Limit is a token-bucket limit: Rate requests per second on average, in
// bursts of up to Burst. The zero Limit imposes no limit.
type Limit struct {
	// Rate is the sustained rate, per second.
	Rate float64
	// Burst is how many requests may come at once (at least 1).
	Burst int
}

// MemoryLimiterOptions configures NewMemoryLimiter. The zero value limits
// nothing.
type MemoryLimiterOptions struct {
	// Identity is the limit of each identity without one of its own.
	Identity Limit
	// PerIdentity, when set, returns the limit of an identity (for
	// example the one recorded with its registry token); ok false means
	// Identity applies.
	PerIdentity func(identity string) (l Limit, ok bool)
	// Address is the limit of each client address.
	Address Limit
	// MaxKeys bounds the buckets kept in memory (least recently used
	// ones are forgotten first). Default 100 000.
	MaxKeys int
	// Clock drives refills. Default SystemClock.
	Clock Clock
}

// String describes the effective limits, for start-up logs.
func (o MemoryLimiterOptions) String() string {
	return fmt.Sprintf("identity=%g/s burst %d (per-identity lookup %v) address=%g/s burst %d maxKeys=%d",
		o.Identity.Rate, o.Identity.Burst, o.PerIdentity != nil, o.Address.Rate, o.Address.Burst, o.MaxKeys)
}

// MemoryLimiter is an in-process Limiter of token buckets with bounded
// memory. Nodes of a cluster each keep their own.
type MemoryLimiter struct {
	opts    MemoryLimiterOptions
	buckets *ratelimit.Buckets
}

// NewMemoryLimiter returns an in-memory Limiter.
func NewMemoryLimiter(opts *MemoryLimiterOptions) (*MemoryLimiter, error) {
	var o MemoryLimiterOptions
	if opts != nil {
		o = *opts
	}
	for _, l := range []Limit{o.Identity, o.Address} {
		if l.Rate < 0 || l.Burst < 0 {
			return nil, errors.New("events: limits must not be negative")
		}
	}
	if o.MaxKeys < 0 {
		return nil, errors.New("events: MemoryLimiterOptions.MaxKeys must not be negative")
	}
	if o.MaxKeys == 0 {
		o.MaxKeys = 100_000
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	return &MemoryLimiter{opts: o, buckets: ratelimit.New(o.MaxKeys)}, nil
}

// LimitFor returns the limit that applies to key.
func (m *MemoryLimiter) LimitFor(key string) Limit {
	return limitFor(key, m.opts.Identity, m.opts.Address, m.opts.PerIdentity)
}

// limitFor chooses the limit of a key: per identity (its own, or the
// default) or per address.
func limitFor(key string, identity, address Limit, per func(string) (Limit, bool)) Limit {
	if id, ok := strings.CutPrefix(key, "id:"); ok {
		if per != nil {
			if l, ok := per(id); ok {
				return l
			}
		}
		return identity
	}
	if strings.HasPrefix(key, "addr:") {
		return address
	}
	return Limit{}
}

// Allow implements Limiter.
func (m *MemoryLimiter) Allow(ctx context.Context, key string, cost int) (bool, time.Duration, error) {
	return m.AllowLimit(ctx, key, m.LimitFor(key), cost)
}

// AllowLimit implements LimitAllower.
func (m *MemoryLimiter) AllowLimit(_ context.Context, key string, l Limit, cost int) (bool, time.Duration, error) {
	ok, wait := m.buckets.Take(key, ratelimit.Limit{Rate: l.Rate, Burst: l.Burst}, cost, m.opts.Clock.Now())
	return ok, wait, nil
}

// RateLimitOptions configures a RateLimit.
type RateLimitOptions struct {
	// Identity returns who makes a request, "" for anonymous requests
	// (which are limited by address only). Default: nobody, so only
	// addresses are limited before the registry authenticates; the
	// registry limits identities with RateLimit.Check. Use a function
	// that verifies credentials: a claimed, unverified name would let
	// anyone spend another's allowance.
	Identity func(*http.Request) string
	// ClientAddr returns the client address of a request. Default: the
	// host of RemoteAddr (forwarding headers are not trusted).
	ClientAddr func(*http.Request) string
	// Cost returns what a request costs. Default 1.
	Cost func(*http.Request) int
	// FailClosed refuses requests (503) when the Limiter fails. By
	// default they are let through, and the failure logged.
	FailClosed bool
	// Metrics, when set, counts rejections.
	Metrics *Metrics
	// Logger receives Limiter failures. Default slog.Default().
	Logger *slog.Logger
}

// RateLimit is the middleware that applies a Limiter per client address
// and per identity, answering 429 Too Many Requests with Retry-After and
// the OCI error body {"errors":[{"code":"TOOMANYREQUESTS",…}]}.
type RateLimit struct {
	lim  Limiter
	opts RateLimitOptions
}

// NewRateLimit returns the rate limit middleware over lim.
func NewRateLimit(lim Limiter, opts *RateLimitOptions) (*RateLimit, error) {
	if lim == nil {
		return nil, errors.New("events: NewRateLimit needs a Limiter")
	}
	var o RateLimitOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &RateLimit{lim: lim, opts: o}, nil
}

// Check applies the identity's limit; the registry calls it after
// authenticating when the middleware cannot tell identities. On false it
// returns how long to wait.
func (l *RateLimit) Check(ctx context.Context, identity string, cost int) (bool, time.Duration, error) {
	if identity == "" {
		return true, 0, nil
	}
	ok, wait, err := l.lim.Allow(ctx, IdentityKey(identity), cost)
	if !ok && err == nil && l.opts.Metrics != nil {
		l.opts.Metrics.RateLimited("identity")
	}
	return ok, wait, err
}

// checkIdentity applies the limit of an authenticated identity: its own
// when it has one and the Limiter can apply it, otherwise the Limiter's.
func (l *RateLimit) checkIdentity(r *http.Request, id *auth.Identity) (bool, time.Duration, error) {
	cost := 1
	if l.opts.Cost != nil {
		cost = l.opts.Cost(r)
	}
	ctx := r.Context()
	var (
		ok   bool
		wait time.Duration
		err  error
	)
	if la, can := l.lim.(LimitAllower); can && id.RateLimit != nil {
		ok, wait, err = la.AllowLimit(ctx, IdentityKey(id.Subject), Limit{Rate: id.RateLimit.PerSecond, Burst: id.RateLimit.Burst}, cost)
	} else {
		ok, wait, err = l.lim.Allow(ctx, IdentityKey(id.Subject), cost)
	}
	if err != nil {
		l.opts.Logger.Warn("events: rate limiter failed", "err", err)
		if l.opts.FailClosed {
			return false, 0, fmt.Errorf("events: rate limiter: %w", err)
		}
		return true, 0, nil
	}
	if !ok && l.opts.Metrics != nil {
		l.opts.Metrics.RateLimited("identity")
	}
	return ok, wait, nil
}

// Middleware returns next wrapped so that requests over their address's
// or identity's limit are answered 429 without reaching next.
func (l *RateLimit) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, w, r, _ := begin(w, r, time.Time{}, l.opts.ClientAddr)
		cost := 1
		if l.opts.Cost != nil {
			cost = l.opts.Cost(r)
		}
		ctx := r.Context()
		ok, wait, err := l.lim.Allow(ctx, AddressKey(rec.ClientAddr), cost)
		kind := "address"
		if err == nil && ok && l.opts.Identity != nil {
			if id := l.opts.Identity(r); id != "" {
				kind = "identity"
				ok, wait, err = l.lim.Allow(ctx, IdentityKey(id), cost)
			}
		}
		if err != nil {
			l.opts.Logger.Warn("events: rate limiter failed", "err", err)
			if l.opts.FailClosed {
				writeUnavailableLimiter(w)
				return
			}
			ok = true
		}
		if !ok {
			if l.opts.Metrics != nil {
				l.opts.Metrics.RateLimited(kind)
			}
			rec.SetDecision(DecisionRateLimited)
			WriteTooManyRequests(w, wait)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteTooManyRequests writes the 429 response of a rate-limited request:
// Retry-After in whole seconds (at least 1) and the OCI distribution
// error body with code TOOMANYREQUESTS.
func WriteTooManyRequests(w http.ResponseWriter, retryAfter time.Duration) {
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprintf(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests; retry after %d s","detail":{"retryAfterSeconds":%d}}]}`, secs, secs)
}

func writeUnavailableLimiter(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"errors":[{"code":"UNAVAILABLE","message":"the rate limiter is unavailable"}]}`))
}

var (
	_ Limiter      = (*MemoryLimiter)(nil)
	_ LimitAllower = (*MemoryLimiter)(nil)
)
