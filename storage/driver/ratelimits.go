package driver

import (
	"context"
	"time"
)

// RateLimits keeps token buckets that several registry nodes share, so
// that a request rate limit holds across a cluster. It is optional: a
// Metadata backend implements it when its store can update one bucket
// atomically for concurrent callers (sqlmeta on PostgreSQL and SQLite;
// memmeta in one process).
//
// Buckets follow the generic cell rate algorithm: one theoretical arrival
// time per key, which is all the state a bucket needs.
type RateLimits interface {
	// TakeRate takes cost units from key's allowance of rate units per
	// second in bursts of up to burst. It returns true when they were
	// available; otherwise it takes nothing and returns false and how
	// long until they will be. rate must be positive and finite, burst
	// and cost at least 1 (otherwise an error matching
	// ErrInvalidArgument); a cost above burst is never available (false,
	// and the time to fill burst units). Calls for the same key, from
	// any number of goroutines or nodes sharing the backend, are applied
	// one at a time: two callers never both take the last unit. A key
	// is any string of at most 1024 bytes. An unknown key has a full
	// bucket.
	TakeRate(ctx context.Context, key string, rate float64, burst, cost int) (ok bool, retryAfter time.Duration, err error)
}
