package storage

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// byteCache is a size-bounded LRU of immutable, content-addressed bytes.
type byteCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[digest.Digest]*list.Element
}

type cacheEntry struct {
	d digest.Digest
	b []byte
}

func newByteCache(max int64) *byteCache {
	return &byteCache{max: max, ll: list.New(), items: map[digest.Digest]*list.Element{}}
}

func (c *byteCache) get(d digest.Digest) ([]byte, bool) {
	if c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[d]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cacheEntry).b, true
}

// add stores b (which the caller must not modify afterwards).
func (c *byteCache) add(d digest.Digest, b []byte) {
	if c.max <= 0 || int64(len(b)) > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[d]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.items[d] = c.ll.PushFront(&cacheEntry{d: d, b: b})
	c.size += int64(len(b))
	for c.size > c.max {
		e := c.ll.Back()
		ce := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.items, ce.d)
		c.size -= int64(len(ce.b))
	}
}

// pullRecorder buffers "last pulled" times and writes them in the
// background, at most once per interval per manifest, so that pulls never
// wait for (or contend on) a metadata write.
type pullRecorder struct {
	s        *Store
	interval time.Duration
	mu       sync.Mutex
	pending  map[pullKey]time.Time
	started  bool
	stop     chan struct{}
	done     chan struct{}
}

type pullKey struct {
	repo string
	d    digest.Digest
}

func (p *pullRecorder) mark(repo string, d digest.Digest, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending == nil {
		p.pending = map[pullKey]time.Time{}
	}
	p.pending[pullKey{repo, d}] = at
	if !p.started {
		p.started = true
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.loop()
	}
}

func (p *pullRecorder) loop() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.flush()
		case <-p.stop:
			p.flush()
			return
		}
	}
}

func (p *pullRecorder) flush() {
	p.mu.Lock()
	batch := p.pending
	p.pending = nil
	p.mu.Unlock()
	r, ok := p.s.meta.(driver.Registry)
	if !ok || len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for k, at := range batch {
		if err := r.MarkPulled(ctx, k.repo, k.d, at); err != nil && !isNotFound(err) {
			p.s.opts.Logger.Warn("storage: could not record a pull", "repository", k.repo, "digest", k.d, "err", err)
		}
	}
}

// close flushes what is pending and stops the background writer.
func (p *pullRecorder) close() {
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if started {
		close(p.stop)
		<-p.done
	}
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
