package token

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/berth-dev/berth/auth"
)

// DefaultRevalidateEvery is how long a Verifier with a Revalidator trusts
// that a token's subject may still use tokens before asking again (see
// VerifierOptions.RevalidateEvery): revoking a registry token stops the
// access tokens issued for it within this bound, instead of when they
// expire.
const DefaultRevalidateEvery = 5 * time.Second

// maxSubjects bounds the subjects whose standing a Verifier remembers;
// past it the entries that are due again are dropped first, then all.
const maxSubjects = 1 << 14

// subjectCache remembers, per subject, until when its Revalidator last
// confirmed it, so that a request costs a map lookup, not a database read.
// Refusals are remembered too, for the same interval. Concurrent misses
// for one subject share one Revalidate call.
type subjectCache struct {
	r     Revalidator
	every time.Duration // 0: ask on every request
	mu    sync.Mutex
	m     map[string]subjectState
	group singleflight.Group
}

type subjectState struct {
	ok    bool
	until time.Time
}

func newSubjectCache(r Revalidator, every time.Duration) *subjectCache {
	if r == nil {
		return nil
	}
	if every < 0 {
		every = 0
	}
	return &subjectCache{r: r, every: every, m: map[string]subjectState{}}
}

// check returns nil when subject may still use the tokens issued for it,
// an error matching auth.ErrUnauthenticated when it may not, or the
// Revalidator's other errors (never remembered).
func (c *subjectCache) check(ctx context.Context, subject string, now time.Time) error {
	if c.every > 0 {
		c.mu.Lock()
		s, ok := c.m[subject]
		c.mu.Unlock()
		if ok && now.Before(s.until) {
			if !s.ok {
				return unauth("subject no longer valid")
			}
			return nil
		}
	}
	v, err, _ := c.group.Do(subject, func() (any, error) {
		// The caller's cancellation must not fail the requests that share
		// this call.
		id, err := c.r.Revalidate(context.WithoutCancel(ctx), subject)
		ok := err == nil && id != nil
		if err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
			return false, err
		}
		if c.every > 0 {
			c.remember(subject, subjectState{ok: ok, until: now.Add(c.every)}, now)
		}
		return ok, nil
	})
	if err != nil {
		return err
	}
	if !v.(bool) {
		return unauth("subject no longer valid")
	}
	return nil
}

func (c *subjectCache) remember(subject string, s subjectState, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxSubjects {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxSubjects {
			clear(c.m)
		}
	}
	c.m[subject] = s
}
