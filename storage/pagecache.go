package storage

import (
	"context"
	"io"
	"os"

	"gocloud.dev/blob"
)

// dropsCache reports whether objects of at least dropMinSize bytes are kept
// out of the page cache (see writeback): for local buckets, unless
// Options.CacheContent is set.
func (s *Store) dropsCache() bool { return s.opts.Sync != nil && !s.opts.CacheContent }

// evict drops the cached pages of a local object that has been made
// durable. It does nothing for other buckets.
func (s *Store) evict(ctx context.Context, key string) {
	var f *os.File
	rc, err := s.bucket.NewRangeReader(ctx, key, 0, 0, &blob.ReaderOptions{BeforeRead: func(as func(any) bool) error {
		as(&f)
		return nil
	}})
	if err != nil {
		return
	}
	if f != nil {
		dropCache(f, 0, 0)
	}
	_ = rc.Close()
}

// openObject opens n bytes (n < 0: to the end) of the object key from off.
// Long reads (long: of at least dropMinSize content bytes) of local
// objects drop the pages behind them from the page cache, as writes do.
func (s *Store) openObject(ctx context.Context, key string, off, n int64, long bool) (io.ReadCloser, error) {
	if !long || !s.dropsCache() {
		return s.bucket.NewRangeReader(ctx, key, off, n, nil)
	}
	var f *os.File
	rc, err := s.bucket.NewRangeReader(ctx, key, off, n, &blob.ReaderOptions{BeforeRead: func(as func(any) bool) error {
		as(&f)
		return nil
	}})
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
	n := int64(0) // to the end of the file
	if d.end > 0 {
		n = max(d.end-d.dropped, 0)
	}
	if d.end == 0 || n > 0 {
		dropCache(d.f, d.dropped, n)
	}
	d.dropped = max(d.off, d.end)
	return d.ReadCloser.Close()
}
