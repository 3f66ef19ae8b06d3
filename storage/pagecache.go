package storage

import (
	"context"
	"fmt"
	"io"
	"os"

	"gocloud.dev/blob"
)

// dropsCache reports whether objects of at least dropMinSize bytes are kept
// out of the page cache (see writeback): for local buckets, unless
// Options.CacheContent is set.
func (s *Store) dropsCache() bool { return s.opts.Sync != nil && !s.opts.CacheContent }

// syncObject makes the object key durable (Options.Sync; nothing to do
// without it) and then, when it holds size >= dropMinSize content bytes,
// drops its pages from the page cache.
func (s *Store) syncObject(ctx context.Context, key string, size int64) error {
	if s.opts.Sync == nil {
		return nil
	}
	if err := s.opts.Sync(ctx, key); err != nil {
		return fmt.Errorf("storage: sync object: %w", err)
	}
	if size >= dropMinSize && s.dropsCache() {
		s.evict(ctx, key)
	}
	return nil
}

// evict drops the cached pages of a local object that has been made
// durable. It does nothing for other buckets.
func (s *Store) evict(ctx context.Context, key string) {
	rc, f, err := s.openLocal(ctx, key, 0, 0)
	if err != nil {
		return
	}
	if f != nil {
		dropCache(f, 0, 0)
	}
	_ = rc.Close()
}

// openLocal opens n bytes (n < 0: to the end) of the object key from off,
// and returns the file behind it when the bucket is a local directory.
func (s *Store) openLocal(ctx context.Context, key string, off, n int64) (io.ReadCloser, *os.File, error) {
	var f *os.File
	rc, err := s.bucket.NewRangeReader(ctx, key, off, n, &blob.ReaderOptions{BeforeRead: func(as func(any) bool) error {
		as(&f)
		return nil
	}})
	return rc, f, err
}

// openObject opens n bytes (n < 0: to the end) of the object key from off.
// Long reads (long: of at least dropMinSize content bytes) of local
// objects drop the pages behind them from the page cache, as writes do.
func (s *Store) openObject(ctx context.Context, key string, off, n int64, long bool) (io.ReadCloser, error) {
	if !long || !s.dropsCache() {
		return s.bucket.NewRangeReader(ctx, key, off, n, nil)
	}
	rc, f, err := s.openLocal(ctx, key, off, n)
	if err != nil || f == nil {
		return rc, err
	}
	adviseSequential(f)
	d := &dropBehindReader{ReadCloser: rc, f: f, off: off, dropped: off}
	if n >= 0 {
		d.end = off + n
	}
	return d, nil
}

// dropBehindReader drops the pages of a local file from the page cache
// dropLag bytes at a time as they are read, and on Close the rest of its
// range, which read-ahead may have brought in.
type dropBehindReader struct {
	io.ReadCloser
	f            *os.File
	off, dropped int64
	end          int64 // end of the range; 0: the end of the file
}

func (d *dropBehindReader) Read(p []byte) (int, error) {
	n, err := d.ReadCloser.Read(p)
	d.off += int64(n)
	if d.off-d.dropped >= dropLag {
		dropCache(d.f, d.dropped, d.off-d.dropped)
		d.dropped = d.off
	}
	return n, err
}

func (d *dropBehindReader) Close() error {
	switch {
	case d.end == 0:
		dropCache(d.f, d.dropped, 0) // to the end of the file
	case d.end > d.dropped:
		dropCache(d.f, d.dropped, d.end-d.dropped)
	}
	return d.ReadCloser.Close()
}
