// Package throttle slows down password guessing: it counts failed logins
// per client address and per user name and, past a burst, refuses further
// attempts without checking them until time has passed.
//
// Each client address (IPv6 addresses per /64 network) and each user name
// has a token bucket of Burst
// failures that refills one failure per Interval (defaults: 10 failures,
// then one more every 6 s, that is 10 a minute sustained). While either
// bucket of a request is empty, [Limiter.Wrap]'s authenticator answers at
// once with an *auth.ThrottledError (errors.Is auth.ErrThrottled, HTTP 429)
// carrying when to retry, without running the (slow) credential check.
// Successful logins do not refill a bucket.
//
// # Concurrency
//
// A Limiter is safe for concurrent use. Its counts are in memory, per
// process: with N registry nodes behind a load balancer a client gets up to
// N times the burst, which still bounds guessing to a few hundred attempts
// an hour per address against 256-bit token secrets.
//
// # Security
//
// Wrap the outermost authenticator (outside auth.WithUploadSessions), so
// that what it admits does not count as failures. Only failed HTTP Basic
// logins count: bearer tokens are signed and
// cannot be guessed, and an expired token is not an attack. Throttling a
// user name lets anyone who knows it delay that user's password logins
// (never their tokens' JWTs) by failing on purpose; the per-address limit
// bounds how fast one client can do so, and the per-user limit bounds
// guessing spread over many addresses. User names are kept only as SHA-256
// hashes, in case someone typed a password into the user field. Both maps
// are bounded (MaxEntries each): when full, buckets that have refilled are
// dropped first, then the least recently used ones, so a flood of addresses
// cannot grow memory nor pin the buckets of others. The client address is
// the connection's remote address unless Options.ClientAddr says otherwise
// (behind a trusted proxy); never trust X-Forwarded-For from the Internet.
package throttle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/berth-dev/berth/auth"
)

// Options configures a Limiter. The zero value of every field is safe.
type Options struct {
	// AddrBurst is how many failures a client address may have before
	// being throttled. Default 10.
	AddrBurst int
	// UserBurst is the same for a user name. Default 10.
	UserBurst int
	// Interval is the time after which one failure is forgiven. Default
	// 6 s.
	Interval time.Duration
	// MaxEntries bounds each of the address and user maps. Default 10000.
	MaxEntries int
	// ClientAddr returns the client address of a request. Default: the
	// host of r.RemoteAddr.
	ClientAddr func(r *http.Request) string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives a warning when a client address or user becomes
	// throttled (the address, and for users the first 8 hex digits of the
	// name's SHA-256, never the name). Default: no logging.
	Logger *slog.Logger
}

// String describes the effective options for start-up logs.
func (o Options) String() string {
	return fmt.Sprintf("throttle{addrBurst=%d userBurst=%d interval=%s maxEntries=%d customClientAddr=%v}",
		o.AddrBurst, o.UserBurst, o.Interval, o.MaxEntries, o.ClientAddr != nil)
}

func (o *Options) validate() error {
	if o.AddrBurst < 0 || o.UserBurst < 0 || o.Interval < 0 || o.MaxEntries < 0 {
		return errors.New("throttle: Options fields must not be negative")
	}
	return nil
}

// Limiter counts failures and decides who is throttled.
type Limiter struct {
	opts  Options
	mu    sync.Mutex
	addrs buckets
	users buckets
}

type bucket struct {
	tokens float64
	last   time.Time
}

type buckets map[string]*bucket

// New returns a Limiter; a nil opts uses the defaults.
func New(opts *Options) (*Limiter, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.AddrBurst == 0 {
		o.AddrBurst = 10
	}
	if o.UserBurst == 0 {
		o.UserBurst = 10
	}
	if o.Interval == 0 {
		o.Interval = 6 * time.Second
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = 10000
	}
	if o.ClientAddr == nil {
		o.ClientAddr = remoteHost
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Limiter{opts: o, addrs: buckets{}, users: buckets{}}, nil
}

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// addrKey is the bucket key of a client address: IPv6 addresses count per
// /64 network, since one client typically holds a whole /64.
func addrKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Unmap().Is4() {
		return addr
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}

func userKey(user string) string {
	if user == "" {
		return ""
	}
	h := sha256.Sum256([]byte(user))
	return string(h[:])
}

// level refills b to now and returns its tokens.
func (l *Limiter) level(b *bucket, burst int, now time.Time) float64 {
	if d := now.Sub(b.last); d > 0 {
		b.tokens += float64(d) / float64(l.opts.Interval)
		b.last = now
	}
	if b.tokens > float64(burst) {
		b.tokens = float64(burst)
	}
	return b.tokens
}

func (l *Limiter) wait(m buckets, key string, burst int, now time.Time) time.Duration {
	if key == "" {
		return 0
	}
	b, ok := m[key]
	if !ok {
		return 0
	}
	if t := l.level(b, burst, now); t < 1 {
		return time.Duration((1 - t) * float64(l.opts.Interval))
	}
	return 0
}

// Check returns an *auth.ThrottledError when the client address or the
// user (either may be empty) may not try now, and nil otherwise.
func (l *Limiter) Check(addr, user string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Now()
	w := max(l.wait(l.addrs, addrKey(addr), l.opts.AddrBurst, now), l.wait(l.users, userKey(user), l.opts.UserBurst, now))
	if w > 0 {
		return &auth.ThrottledError{RetryAfter: w}
	}
	return nil
}

// Fail records a failed attempt by the client address and user (either
// may be empty).
func (l *Limiter) Fail(addr, user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Now()
	if l.take(l.addrs, addrKey(addr), l.opts.AddrBurst, now) && l.opts.Logger != nil {
		l.opts.Logger.Warn("throttle: too many failed logins from a client address", "addr", addrKey(addr))
	}
	if k := userKey(user); l.take(l.users, k, l.opts.UserBurst, now) && l.opts.Logger != nil {
		l.opts.Logger.Warn("throttle: too many failed logins for a user", "user_sha256", hex.EncodeToString([]byte(k))[:8])
	}
}

// take records a failure for key and reports whether it has just become
// throttled.
func (l *Limiter) take(m buckets, key string, burst int, now time.Time) bool {
	if key == "" {
		return false
	}
	b, ok := m[key]
	if !ok {
		if len(m) >= l.opts.MaxEntries {
			l.evict(m, burst, now)
		}
		b = &bucket{tokens: float64(burst), last: now}
		m[key] = b
	}
	if l.level(b, burst, now) >= 1 {
		b.tokens--
		return b.tokens < 1
	}
	b.tokens = 0
	return false
}

// evict drops the buckets that have refilled, or else the least recently
// used one.
func (l *Limiter) evict(m buckets, burst int, now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, b := range m {
		if l.level(b, burst, now) >= float64(burst) {
			delete(m, k)
			continue
		}
		if oldest == "" || b.last.Before(oldestAt) {
			oldest, oldestAt = k, b.last
		}
	}
	if len(m) >= l.opts.MaxEntries && oldest != "" {
		delete(m, oldest)
	}
}

// Options returns the effective options.
func (l *Limiter) Options() Options { return l.opts }

// Len returns how many client addresses and users have buckets, for
// metrics and tests.
func (l *Limiter) Len() (addrs, users int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs), len(l.users)
}

// Wrap returns an Authenticator that throttles a's HTTP Basic logins:
// requests whose client address or Basic user name is throttled get an
// *auth.ThrottledError without reaching a, and a's auth.ErrUnauthenticated
// answers to Basic credentials count as failures. Requests without
// credentials or with other schemes pass through unthrottled.
func (l *Limiter) Wrap(a auth.Authenticator) auth.Authenticator {
	return auth.AuthenticatorFunc(func(r *http.Request) (*auth.Identity, error) {
		user, _, ok := r.BasicAuth()
		if !ok {
			return a.Authenticate(r)
		}
		addr := l.opts.ClientAddr(r)
		if err := l.Check(addr, user); err != nil {
			return nil, err
		}
		id, err := a.Authenticate(r)
		if errors.Is(err, auth.ErrUnauthenticated) {
			l.Fail(addr, user)
		}
		return id, err
	})
}
