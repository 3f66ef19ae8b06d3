// Package ratelimit is an in-memory rate limiter with bounded memory:
// per-key buckets in a fixed number of shards, at most MaxKeys of them,
// so that any number of distinct keys (client addresses, identities)
// costs bounded memory.
//
// Each bucket is a token bucket kept as the generic cell rate algorithm
// keeps it: one theoretical arrival time, updated with a compare-and-swap,
// so that requests of one key on several cores never wait for a lock;
// finding a known key takes a shard's read lock only.
//
// A bucket that is full again is no different from a new one. When a
// shard is full, it forgets its full buckets, which only ever forgets
// credit a client had already earned back, and when they are fewer than
// an eighth of the shard, other buckets up to that eighth, the less
// recently used of pairs, which grants those clients at most one extra
// burst. A new key costs constant time on average, however many distinct
// keys arrive.
//
// # Concurrency
//
// Buckets is safe for concurrent use; keys in different shards never
// contend, and takes from one bucket only retry a compare-and-swap.
package ratelimit

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Limit is a token-bucket limit: Rate tokens per second, up to Burst. The
// zero Limit (Rate 0) means no limit.
type Limit struct {
	// Rate is how many tokens are added per second.
	Rate float64
	// Burst is how many tokens the bucket holds; at least 1 when Rate is
	// set.
	Burst int
}

// Unlimited reports whether l imposes no limit.
func (l Limit) Unlimited() bool { return l.Rate <= 0 || math.IsInf(l.Rate, 1) || math.IsNaN(l.Rate) }

const shards = 32

// Buckets holds one bucket per key.
type Buckets struct {
	seed   maphash.Seed
	perMax int
	// base is the first time passed to Take: times are kept as float64
	// nanoseconds since it, exact for months.
	baseOnce sync.Once
	base     time.Time
	shards   [shards]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*bucket
}

type bucket struct {
	tat  atomic.Uint64 // float64 bits: theoretical arrival time (ns since base)
	used atomic.Int64  // when last taken from (ns since base), for eviction
}

// New returns Buckets holding at most maxKeys buckets (at least shards).
func New(maxKeys int) *Buckets {
	b := &Buckets{seed: maphash.MakeSeed(), perMax: max(1, (maxKeys+shards-1)/shards)}
	for i := range b.shards {
		b.shards[i].m = map[string]*bucket{}
	}
	return b
}

// Len returns how many buckets are held.
func (b *Buckets) Len() int {
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Take takes cost tokens from key's bucket under limit l at time now. It
// returns true when they were there; otherwise it takes nothing and
// returns how long until they will be. A cost above the burst can never
// be met: it returns false and the time to fill the bucket.
func (b *Buckets) Take(key string, l Limit, cost int, now time.Time) (bool, time.Duration) {
	if l.Unlimited() || cost <= 0 {
		return true, 0
	}
	burst := max(l.Burst, 1)
	interval := 1e9 / l.Rate // ns per token
	window := float64(burst) * interval
	if cost > burst {
		return false, toDuration(window)
	}
	inc := float64(cost) * interval
	b.baseOnce.Do(func() { b.base = now })
	n := float64(now.Sub(b.base))
	bk := b.bucket(key, n)
	bk.used.Store(int64(n))
	for {
		old := bk.tat.Load()
		tat := max(math.Float64frombits(old), n)
		// The cost fits when the arrival time it moves to stays within
		// a burst of now.
		if over := (tat - n) + inc - window; over > 0 {
			return false, toDuration(over)
		}
		if bk.tat.CompareAndSwap(old, math.Float64bits(tat+inc)) {
			return true, 0
		}
	}
}

// toDuration rounds ns up to a Duration, saturating.
func toDuration(ns float64) time.Duration {
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(math.Ceil(ns))
}

// bucket returns key's bucket, adding a full one when there is none.
func (b *Buckets) bucket(key string, now float64) *bucket {
	s := &b.shards[maphash.String(b.seed, key)%shards]
	s.mu.RLock()
	bk := s.m[key]
	s.mu.RUnlock()
	if bk != nil {
		return bk
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if bk := s.m[key]; bk != nil {
		return bk
	}
	if len(s.m) >= b.perMax {
		s.evict(now, b.perMax)
	}
	bk = &bucket{}
	bk.tat.Store(math.Float64bits(math.Inf(-1))) // full
	s.m[key] = bk
	return bk
}

// evict makes room in a full shard of up to perMax buckets: it drops the
// buckets that are full again at now and, until an eighth of perMax are
// gone, of every two other buckets it looks at (in map order, which is
// random), the less recently used. s.mu is held.
func (s *shard) evict(now float64, perMax int) {
	dropped := 0
	for k, bk := range s.m {
		if math.Float64frombits(bk.tat.Load()) <= now {
			delete(s.m, k)
			dropped++
		}
	}
	want := max(1, perMax/8)
	if dropped >= want {
		return
	}
	var prev string
	var prevUsed int64
	have := false
	for k, bk := range s.m {
		if dropped >= want {
			return
		}
		u := bk.used.Load()
		if !have {
			prev, prevUsed, have = k, u, true
			continue
		}
		if u < prevUsed {
			delete(s.m, k)
		} else {
			delete(s.m, prev)
		}
		dropped++
		have = false
	}
	if have && dropped < want {
		delete(s.m, prev)
	}
}
