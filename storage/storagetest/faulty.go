package storagetest

import (
	"context"
	"errors"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// ErrInjected is the error that FaultyBucket's injected faults return.
var ErrInjected = errors.New("storagetest: injected fault")

// Faults chooses the operations a FaultyBucket fails. Counters are over the
// bucket's lifetime and start at 1; zero disables a fault. Fields may be
// changed between operations while holding no other lock (the bucket reads
// them under its own mutex through Set).
type Faults struct {
	// FailWriteAfter fails an object write once it has accepted this many
	// bytes in total across all writes.
	FailWriteAfter int64
	// FailCloseN fails the Nth writer Close (the object is not stored).
	FailCloseN int
	// FailDeletes fails every Delete.
	FailDeletes bool
	// FailReadAfter fails reads once this many bytes have been read in
	// total.
	FailReadAfter int64
}

// FaultyBucket wraps a bucket and fails the operations f chooses, to test
// that failures in the middle of storing or reading content never make
// anything half-written visible or return wrong bytes. Close closes inner.
type FaultyBucket struct {
	*blob.Bucket
	d *faultyDriver
}

// NewFaultyBucket returns inner wrapped with the faults in f.
func NewFaultyBucket(inner *blob.Bucket, f Faults) *FaultyBucket {
	d := &faultyDriver{inner: inner, f: f}
	return &FaultyBucket{Bucket: blob.NewBucket(d), d: d}
}

// Set replaces the faults.
func (b *FaultyBucket) Set(f Faults) {
	b.d.mu.Lock()
	defer b.d.mu.Unlock()
	b.d.f = f
	b.d.written, b.d.read, b.d.closes = 0, 0, 0
}

type faultyDriver struct {
	inner *blob.Bucket
	mu    sync.Mutex
	f     Faults
	// counters since the last Set
	written, read int64
	closes        int
}

func (d *faultyDriver) ErrorCode(err error) gcerrors.ErrorCode {
	if errors.Is(err, ErrInjected) {
		return gcerrors.Internal
	}
	return gcerrors.Code(err)
}

func (d *faultyDriver) As(i any) bool                 { return d.inner.As(i) }
func (d *faultyDriver) ErrorAs(err error, i any) bool { return d.inner.ErrorAs(err, i) }
func (d *faultyDriver) Close() error                  { return d.inner.Close() }

func (d *faultyDriver) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	a, err := d.inner.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{
		CacheControl: a.CacheControl, ContentDisposition: a.ContentDisposition,
		ContentEncoding: a.ContentEncoding, ContentLanguage: a.ContentLanguage,
		ContentType: a.ContentType, Metadata: a.Metadata, CreateTime: a.CreateTime,
		ModTime: a.ModTime, Size: a.Size, MD5: a.MD5, ETag: a.ETag, AsFunc: a.As,
	}, nil
}

func (d *faultyDriver) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	page, next, err := d.inner.ListPage(ctx, opts.PageToken, max(opts.PageSize, 1000), &blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	if err != nil {
		return nil, err
	}
	out := &driver.ListPage{NextPageToken: next}
	for _, o := range page {
		out.Objects = append(out.Objects, &driver.ListObject{Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir})
	}
	return out, nil
}

func (d *faultyDriver) NewRangeReader(ctx context.Context, key string, offset, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	r, err := d.inner.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		return nil, err
	}
	return &faultyReader{d: d, r: r}, nil
}

func (d *faultyDriver) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	ctx, cancel := context.WithCancel(ctx)
	w, err := d.inner.NewWriter(ctx, key, &blob.WriterOptions{ContentType: contentType, BufferSize: opts.BufferSize, Metadata: opts.Metadata})
	if err != nil {
		cancel()
		return nil, err
	}
	return &faultyWriter{d: d, w: w, cancel: cancel}, nil
}

func (d *faultyDriver) Copy(ctx context.Context, dst, src string, _ *driver.CopyOptions) error {
	return d.inner.Copy(ctx, dst, src, nil)
}

func (d *faultyDriver) Delete(ctx context.Context, key string, _ *driver.DeleteOptions) error {
	d.mu.Lock()
	fail := d.f.FailDeletes
	d.mu.Unlock()
	if fail {
		return ErrInjected
	}
	return d.inner.Delete(ctx, key)
}

func (d *faultyDriver) SignedURL(ctx context.Context, key string, opts *driver.SignedURLOptions) (string, error) {
	return "", errors.New("storagetest: FaultyBucket does not sign URLs")
}

type faultyWriter struct {
	d      *faultyDriver
	w      *blob.Writer
	cancel context.CancelFunc
	failed bool
}

func (w *faultyWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	limit := w.d.f.FailWriteAfter
	if limit > 0 && w.d.written+int64(len(p)) > limit {
		w.d.mu.Unlock()
		w.failed = true
		return 0, ErrInjected
	}
	w.d.written += int64(len(p))
	w.d.mu.Unlock()
	return w.w.Write(p)
}

func (w *faultyWriter) Close() error {
	w.d.mu.Lock()
	w.d.closes++
	fail := w.failed || w.d.f.FailCloseN > 0 && w.d.closes == w.d.f.FailCloseN
	w.d.mu.Unlock()
	defer w.cancel()
	if fail {
		// A gocloud write whose context is cancelled before Close is
		// discarded, as a failed upload would be.
		w.cancel()
		_ = w.w.Close()
		return ErrInjected
	}
	return w.w.Close()
}

type faultyReader struct {
	d *faultyDriver
	r *blob.Reader
}

func (r *faultyReader) Read(p []byte) (int, error) {
	r.d.mu.Lock()
	limit := r.d.f.FailReadAfter
	if limit > 0 && r.d.read+int64(len(p)) > limit {
		r.d.mu.Unlock()
		return 0, ErrInjected
	}
	r.d.mu.Unlock()
	n, err := r.r.Read(p)
	r.d.mu.Lock()
	r.d.read += int64(n)
	r.d.mu.Unlock()
	return n, err
}

func (r *faultyReader) Close() error { return r.r.Close() }

func (r *faultyReader) Attributes() *driver.ReaderAttributes {
	return &driver.ReaderAttributes{ContentType: r.r.ContentType(), ModTime: r.r.ModTime(), Size: r.r.Size()}
}

func (r *faultyReader) As(i any) bool { return r.r.As(i) }
