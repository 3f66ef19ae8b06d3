package token

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultCacheBytes is the default bound of a Verifier's cache of verified
// tokens (see VerifierOptions.CacheBytes).
const DefaultCacheBytes = 4 << 20

// maxCachedTokenBytes is the longest token the cache keeps; longer ones
// are verified in full every time.
const maxCachedTokenBytes = 16 << 10

// cacheEntryOverhead approximates the memory of one entry besides the
// token's own length (the decoded claims are about as long as the token).
const cacheEntryOverhead = 512

// verifiedCache remembers tokens whose signature, key, algorithm, issuer
// and audience were checked, by the SHA-256 of the token, with their
// decoded claims, until the tokens expire. It is a size-bounded LRU.
//
// Only checks that cannot change with time are skipped on a hit: the
// caller re-runs every time-dependent check (expiry, not-before,
// issued-at, upload grace) on the cached claims. A token whose signature
// did not verify is never stored, and a hit needs the same token bytes
// (SHA-256 is collision-resistant), so the cache cannot make a forged or
// altered token pass.
type verifiedCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[[sha256.Size]byte]*list.Element
}

// verified is one cache entry. Its claims are shared by every caller and
// never modified.
type verified struct {
	key   [sha256.Size]byte
	std   *jwt.Claims
	priv  *berthClaims
	until time.Time // expiry plus leeway: the entry is useless after it
	cost  int64
}

func newVerifiedCache(max int64) *verifiedCache {
	if max <= 0 {
		return nil
	}
	return &verifiedCache{max: max, ll: list.New(), items: map[[sha256.Size]byte]*list.Element{}}
}

func tokenKey(raw string) [sha256.Size]byte { return sha256.Sum256([]byte(raw)) }

// get returns the claims of a verified token that has not expired (with
// leeway) at now.
func (c *verifiedCache) get(key [sha256.Size]byte, now time.Time) (*jwt.Claims, *berthClaims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, nil, false
	}
	v := e.Value.(*verified)
	if now.After(v.until) {
		c.remove(e)
		return nil, nil, false
	}
	c.ll.MoveToFront(e)
	return v.std, v.priv, true
}

// add stores the claims of a token verified at now, unless the token has
// already expired or is too long to keep.
func (c *verifiedCache) add(key [sha256.Size]byte, tokenLen int, std *jwt.Claims, priv *berthClaims, until, now time.Time) {
	if tokenLen > maxCachedTokenBytes || !now.Before(until) {
		return
	}
	cost := int64(tokenLen) + cacheEntryOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.items[key] = c.ll.PushFront(&verified{key: key, std: std, priv: priv, until: until, cost: cost})
	c.size += cost
	for c.size > c.max {
		c.remove(c.ll.Back())
	}
}

func (c *verifiedCache) remove(e *list.Element) {
	v := e.Value.(*verified)
	c.ll.Remove(e)
	delete(c.items, v.key)
	c.size -= v.cost
}

// len returns the number of entries, for tests.
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
