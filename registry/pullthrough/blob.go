package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/berth-dev/berth/storage"
	"github.com/opencontainers/go-digest"
)

// errAbandoned ends a fetch whose client went away with more than
// Options.BackgroundBytes left to read.
var errAbandoned = errors.New("pullthrough: blob fetch abandoned: its client went away")

// errClientGone closes the client's side of a fetch.
var errClientGone = errors.New("pullthrough: the client stopped reading")

// fill is one fetch of a blob into the store.
type fill struct {
	done chan struct{}
	err  error
}

// OpenBlob implements registry.Mirror.
//
// When the store already holds the content (cached through another
// repository, or pushed), a HEAD request asks the upstream whether repo
// has it; if so it is linked to repo and read from the store, without
// fetching it again.
//
// Otherwise one request fetches it: its bytes are stored (hashed,
// encrypted, written) and passed to the reader in one pass, in constant
// memory, and the stored blob is linked to repo only when its digest and
// size match. Concurrent requests for the same blob of the same
// repository wait for that fetch and then read the stored blob: the
// upstream sends it once, and nothing holds it in memory. When the client
// that caused the fetch stops reading (Close before EOF), the fetch goes
// on in the background if at most Options.BackgroundBytes remain, so that
// the blob is cached for the next pull; otherwise it is abandoned, nothing
// is stored, and a waiting request starts a fetch of its own.
func (c *Cache) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	up, remote, ok := c.match(repo)
	if !ok {
		return nil, -1, fmt.Errorf("pullthrough: blob %s in %s: %w", d, repo, storage.ErrNotFound)
	}
	if err := storage.ValidateDigest(d); err != nil {
		return nil, -1, err
	}
	var last error
	for range 3 {
		rd, size, err := c.openStored(ctx, repo, d)
		if err == nil || !errors.Is(err, storage.ErrNotFound) {
			return rd, size, err
		}
		if _, err := c.store.StatBlob(ctx, d); err == nil {
			rd, size, err := c.linkStored(ctx, up, repo, remote, d)
			if errors.Is(err, storage.ErrNotFound) {
				last = err // collected in the meantime: fetch it
				continue
			}
			return rd, size, err
		} else if !errors.Is(err, storage.ErrNotFound) {
			return nil, -1, err
		}
		key := repo + "@" + string(d)
		c.mu.Lock()
		f, busy := c.fills[key]
		if !busy {
			f = &fill{done: make(chan struct{})}
			c.fills[key] = f
		}
		c.mu.Unlock()
		if !busy {
			return c.fetch(ctx, up, repo, remote, d, key, f)
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, -1, ctx.Err()
		}
		if f.err != nil && !errors.Is(f.err, errAbandoned) && !errors.Is(f.err, context.DeadlineExceeded) && !errors.Is(f.err, context.Canceled) {
			return nil, -1, f.err
		}
		last = f.err
	}
	if last == nil {
		last = errAbandoned
	}
	return nil, -1, last
}

// openStored opens the blob if repo links it.
func (c *Cache) openStored(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	desc, err := c.store.StatRepoBlob(ctx, repo, d)
	if err != nil {
		return nil, -1, err
	}
	rd, err := c.store.OpenBlob(ctx, d, 0, desc.Size)
	if err != nil {
		return nil, -1, err
	}
	return rd, desc.Size, nil
}

// linkStored links content the store holds to repo once the upstream
// confirms that repo has it.
func (c *Cache) linkStored(ctx context.Context, up *upstream, repo, remote string, d digest.Digest) (io.ReadCloser, int64, error) {
	hctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	resp, err := c.do(hctx, up, remote, http.MethodHead, "/blobs/"+string(d), nil, "BLOB_UNKNOWN")
	if err != nil {
		return nil, -1, err
	}
	resp.Body.Close()
	if err := c.ensureRepo(ctx, up, repo); err != nil {
		return nil, -1, err
	}
	if err := c.store.LinkBlob(ctx, repo, d, By); err != nil {
		return nil, -1, err
	}
	return c.openStored(ctx, repo, d)
}

// fetch starts the fetch f: it returns once the upstream answered, with
// a reader of the bytes as they are stored.
func (c *Cache) fetch(ctx context.Context, up *upstream, repo, remote string, d digest.Digest, key string, f *fill) (io.ReadCloser, int64, error) {
	// The fetch outlives the request that started it, within BlobTimeout.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.BlobTimeout)
	finish := func(err error) {
		c.mu.Lock()
		delete(c.fills, key)
		c.mu.Unlock()
		f.err = err
		close(f.done)
		cancel()
	}
	resp, err := c.do(fctx, up, remote, http.MethodGet, "/blobs/"+string(d), nil, "BLOB_UNKNOWN")
	if err != nil {
		finish(err)
		return nil, -1, err
	}
	size := resp.ContentLength
	if limit := c.store.Options().MaxBlobSize; limit > 0 && size > limit {
		resp.Body.Close()
		err := &storage.TooLargeError{Limit: limit}
		finish(err)
		return nil, -1, err
	}
	pipe := newRingPipe(pipeSize)
	s := &sink{pw: pipe, size: size, budget: c.opts.BackgroundBytes}
	// A stalled client must not hold the fetch past its deadline.
	stop := context.AfterFunc(fctx, func() { pipe.closeRead(context.Cause(fctx)) })
	go func() {
		_, err := c.store.PutBlob(fctx, io.TeeReader(resp.Body, s), storage.Descriptor{Digest: d, Size: size})
		resp.Body.Close()
		var dm *storage.DigestMismatchError
		var sm *storage.SizeMismatchError
		switch {
		case errors.Is(err, errAbandoned):
		case errors.As(err, &dm), errors.As(err, &sm):
			err = badUpstream("the upstream blob does not match its digest or size", err)
		case err != nil && fctx.Err() == nil && !errors.As(err, new(*storage.TooLargeError)):
			// Reading the upstream's body failed.
			err = upstreamError(err, "", "")
		}
		if err == nil {
			err = c.ensureRepo(fctx, up, repo)
		}
		if err == nil {
			err = c.store.LinkBlob(fctx, repo, d, By)
		}
		stop() // before finish cancels fctx: the client must see EOF, not a closed pipe
		if err == nil {
			s.flush()
		}
		pipe.closeWrite(err)
		finish(err)
	}()
	return reader{pipe}, size, nil
}

// pipeSize is the slack between storing a blob and sending it: the
// memory one fetch holds for its client.
const pipeSize = 1 << 20

// reader is the client's side of a fetch.
type reader struct{ p *ringPipe }

func (r reader) Read(b []byte) (int, error) { return r.p.Read(b) }

// Close tells the fetch that the client went away.
func (r reader) Close() error {
	r.p.closeRead(errClientGone)
	return nil
}

// sink passes the bytes the store reads from the upstream on to the
// client, holding back the last byte received until the content is
// verified and stored (flush). When the client is gone it discards them,
// and fails the fetch unless the rest fits the background budget.
type sink struct {
	pw      io.Writer
	size    int64 // -1: unknown
	budget  int64
	n       int64
	held    [1]byte
	hasHeld bool
	gone    bool
}

func (s *sink) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.n += int64(len(p))
	if !s.gone {
		var err error
		if s.hasHeld {
			_, err = s.pw.Write(s.held[:])
		}
		if err == nil && len(p) > 1 {
			_, err = s.pw.Write(p[:len(p)-1])
		}
		s.held[0], s.hasHeld = p[len(p)-1], true
		if err != nil {
			s.gone = true
		}
	}
	if s.gone && (s.budget < 0 || s.size < 0 || s.size-s.n > s.budget) {
		return 0, errAbandoned
	}
	return len(p), nil
}

// flush sends the byte held back.
func (s *sink) flush() {
	if !s.gone && s.hasHeld {
		_, _ = s.pw.Write(s.held[:])
	}
}
