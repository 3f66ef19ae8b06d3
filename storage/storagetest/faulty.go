package storagetest

import (
	"context"
	"errors"
	"io"
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
	token := opts.PageToken
	if len(token) == 0 {
		token = blob.FirstPageToken
	}
	page, next, err := d.inner.ListPage(ctx, token, max(opts.PageSize, 1000), &blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
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

// NewTypedWriter returns a writer that streams to the inner bucket through
// Upload, which every gocloud driver can abort safely.
func (d *faultyDriver) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	ctx, cancel := context.WithCancel(ctx)
	return &faultyWriter{d: d, ctx: ctx, cancel: cancel, key: key,
		opts: &blob.WriterOptions{ContentType: contentType, BufferSize: opts.BufferSize, Metadata: opts.Metadata}}, nil
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
	ctx    context.Context
	cancel context.CancelFunc
	key    string
	opts   *blob.WriterOptions
	failed bool
	// Set by the first Write: the pipe into a background Upload.
	pipe *io.PipeWriter
	done chan error
}

// count accounts for n bytes about to be written and reports whether the
// write must fail.
func (w *faultyWriter) count(n int) bool {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if limit := w.d.f.FailWriteAfter; limit > 0 && w.d.written+int64(n) > limit {
		w.failed = true
		return true
	}
	w.d.written += int64(n)
	return false
}

// Upload implements driver.Uploader.
func (w *faultyWriter) Upload(r io.Reader) error {
	return w.d.inner.Upload(w.ctx, w.key, &countingReader{w: w, r: r}, w.opts)
}

type countingReader struct {
	w *faultyWriter
	r io.Reader
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.w.count(n) {
		c.w.cancel()
		return 0, ErrInjected
	}
	if err == io.EOF && c.w.closeFails() {
		c.w.cancel()
		return n, ErrInjected
	}
	return n, err
}

func (w *faultyWriter) Write(p []byte) (int, error) {
	if w.count(len(p)) {
		return 0, ErrInjected
	}
	if w.pipe == nil {
		pr, pw := io.Pipe()
		w.pipe, w.done = pw, make(chan error, 1)
		go func() {
			err := w.d.inner.Upload(w.ctx, w.key, pr, w.opts)
			_ = pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
			w.done <- err
		}()
	}
	return w.pipe.Write(p)
}

// closeFails counts a close and reports whether it is the one to fail.
func (w *faultyWriter) closeFails() bool {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	w.d.closes++
	return w.d.f.FailCloseN > 0 && w.d.closes == w.d.f.FailCloseN
}

// Close completes a write made with Write: the object is stored unless a
// fault was injected or the context was cancelled. After Upload it only
// releases resources.
func (w *faultyWriter) Close() error {
	defer w.cancel()
	if w.pipe == nil {
		if w.failed {
			return ErrInjected
		}
		return w.ctx.Err()
	}
	if w.failed || w.closeFails() {
		w.cancel()
		_ = w.pipe.CloseWithError(ErrInjected)
		<-w.done
		return ErrInjected
	}
	_ = w.pipe.Close()
	return <-w.done
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
