// Package ratelimit is an in-memory token-bucket limiter with bounded
// memory: per-key buckets in a fixed number of shards, each with a
// least-recently-used bound, so that any number of distinct keys (client
// addresses, identities) costs at most MaxKeys buckets.
//
// A bucket that is full again is no different from a new one, so evicting
// the least recently used key only ever forgets credit a client had
// already earned back, or, for keys evicted while not full, grants at
// most one extra burst to a client that stayed away longer than every
// MaxKeys other clients.
//
// # Concurrency
//
// Buckets is safe for concurrent use; keys in different shards never
// contend.
package ratelimit

import (
	"container/list"
	"hash/maphash"
	"math"
	"sync"
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
func (l Limit) Unlimited() bool { return l.Rate <= 0 || math.IsInf(l.Rate, 1) }

const shards = 32

// Buckets holds one token bucket per key.
type Buckets struct {
	seed   maphash.Seed
	perMax int
	shards [shards]shard
}

type shard struct {
	mu  sync.Mutex
	m   map[string]*list.Element
	lru list.List // front: most recently used; values are *bucket
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// New returns Buckets holding at most maxKeys buckets (at least shards).
func New(maxKeys int) *Buckets {
	b := &Buckets{seed: maphash.MakeSeed(), perMax: max(1, (maxKeys+shards-1)/shards)}
	for i := range b.shards {
		b.shards[i].m = map[string]*list.Element{}
	}
	return b
}

// Len returns how many buckets are held.
func (b *Buckets) Len() int {
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
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
	burst := float64(max(l.Burst, 1))
	s := &b.shards[maphash.String(b.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	var bk *bucket
	if e, ok := s.m[key]; ok {
		s.lru.MoveToFront(e)
		bk = e.Value.(*bucket)
		if el := now.Sub(bk.last); el > 0 {
			bk.tokens = min(burst, bk.tokens+el.Seconds()*l.Rate)
			bk.last = now
		}
		bk.tokens = min(bk.tokens, burst) // the limit may have shrunk
	} else {
		if len(s.m) >= b.perMax {
			old := s.lru.Back()
			s.lru.Remove(old)
			delete(s.m, old.Value.(*bucket).key)
		}
		bk = &bucket{key: key, tokens: burst, last: now}
		s.m[key] = s.lru.PushFront(bk)
	}
	c := float64(cost)
	if bk.tokens >= c {
		bk.tokens -= c
		return true, 0
	}
	need := min(c, burst) - bk.tokens
	return false, time.Duration(math.Ceil(need / l.Rate * float64(time.Second)))
}
