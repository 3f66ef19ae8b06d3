package events

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/berth-dev/berth/storage/driver"
)

// SharedLimiterOptions configures NewSharedLimiter. The zero value limits
// nothing.
type SharedLimiterOptions struct {
	// Identity is the limit of each identity without one of its own.
	Identity Limit
	// PerIdentity, when set, returns the limit of an identity; ok false
	// means Identity applies.
	PerIdentity func(identity string) (l Limit, ok bool)
	// Address is the limit of each client address.
	Address Limit
	// Prefix starts every key in the store, so that several registries
	// can share one. Default "berth:".
	Prefix string
	// MaxRemembered bounds the refusals remembered locally (see
	// SharedLimiter). Default 10 000.
	MaxRemembered int
	// Clock times the remembered refusals. Default SystemClock.
	Clock Clock
}

// String describes the effective limits, for start-up logs.
func (o SharedLimiterOptions) String() string {
	return fmt.Sprintf("identity=%g/s burst %d (per-identity lookup %v) address=%g/s burst %d prefix=%q",
		o.Identity.Rate, o.Identity.Burst, o.PerIdentity != nil, o.Address.Rate, o.Address.Burst, o.Prefix)
}

// SharedLimiter is a Limiter whose token buckets live in a store that the
// nodes of a cluster share (a driver.RateLimits: the SQL metadata store,
// on PostgreSQL for several nodes), so that a client's allowance is one
// across the cluster whichever node serves it.
//
// Each decision is one atomic update in the store. A refusal is
// remembered on the node until its retry time, during which requests of
// the same key and at least the same cost are refused without asking the
// store: the store's answer could not be different, since a bucket's next
// free time only moves later as other nodes take from it.
type SharedLimiter struct {
	store driver.RateLimits
	opts  SharedLimiterOptions

	mu      sync.Mutex
	refused map[string]refusal
}

type refusal struct {
	until time.Time
	cost  int
}

// NewSharedLimiter returns a Limiter over store.
func NewSharedLimiter(store driver.RateLimits, opts *SharedLimiterOptions) (*SharedLimiter, error) {
	if store == nil {
		return nil, errors.New("events: NewSharedLimiter needs a store")
	}
	var o SharedLimiterOptions
	if opts != nil {
		o = *opts
	}
	for _, l := range []Limit{o.Identity, o.Address} {
		if l.Rate < 0 || l.Burst < 0 || math.IsNaN(l.Rate) {
			return nil, errors.New("events: limits must not be negative")
		}
	}
	if o.MaxRemembered < 0 {
		return nil, errors.New("events: SharedLimiterOptions.MaxRemembered must not be negative")
	}
	if o.MaxRemembered == 0 {
		o.MaxRemembered = 10_000
	}
	if o.Prefix == "" {
		o.Prefix = "berth:"
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	return &SharedLimiter{store: store, opts: o, refused: map[string]refusal{}}, nil
}

// LimitFor returns the limit that applies to key.
func (s *SharedLimiter) LimitFor(key string) Limit {
	return limitFor(key, s.opts.Identity, s.opts.Address, s.opts.PerIdentity)
}

// Allow implements Limiter.
func (s *SharedLimiter) Allow(ctx context.Context, key string, cost int) (bool, time.Duration, error) {
	return s.AllowLimit(ctx, key, s.LimitFor(key), cost)
}

// AllowLimit implements LimitAllower.
func (s *SharedLimiter) AllowLimit(ctx context.Context, key string, l Limit, cost int) (bool, time.Duration, error) {
	if l.Rate <= 0 || math.IsInf(l.Rate, 1) || cost <= 0 {
		return true, 0, nil
	}
	now := s.opts.Clock.Now()
	s.mu.Lock()
	if r, ok := s.refused[key]; ok {
		if now.Before(r.until) && cost >= r.cost {
			s.mu.Unlock()
			return false, r.until.Sub(now), nil
		}
		if !now.Before(r.until) {
			delete(s.refused, key)
		}
	}
	s.mu.Unlock()
	ok, wait, err := s.store.TakeRate(ctx, s.opts.Prefix+key, l.Rate, max(l.Burst, 1), cost)
	if err != nil {
		return false, 0, fmt.Errorf("events: shared limiter: %w", err)
	}
	if !ok && wait > 0 {
		s.remember(key, refusal{until: now.Add(wait), cost: cost}, now)
	}
	return ok, wait, nil
}

// remember keeps a refusal, dropping expired ones when the map is full
// (and the new one when it is still full: the store still decides).
func (s *SharedLimiter) remember(key string, r refusal, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.refused) >= s.opts.MaxRemembered {
		for k, old := range s.refused {
			if !now.Before(old.until) {
				delete(s.refused, k)
			}
		}
		if len(s.refused) >= s.opts.MaxRemembered {
			return
		}
	}
	s.refused[key] = r
}

var (
	_ Limiter      = (*SharedLimiter)(nil)
	_ LimitAllower = (*SharedLimiter)(nil)
)
