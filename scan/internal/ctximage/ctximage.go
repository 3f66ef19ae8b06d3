// Package ctximage makes an image's layer reads honour a context: a
// reader opened through Wrap is closed when the context is done, so that
// a scan blocked on a slow or stalled layer (a registry that stops
// sending) returns promptly with the context's error.
package ctximage

import (
	"context"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Wrap returns img with layer readers bound to ctx.
func Wrap(ctx context.Context, img v1.Image) v1.Image { return &image{Image: img, ctx: ctx} }

type image struct {
	v1.Image
	ctx context.Context
}

func (i *image) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for k, l := range ls {
		out[k] = &layer{Layer: l, ctx: i.ctx}
	}
	return out, nil
}

func (i *image) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return &layer{Layer: l, ctx: i.ctx}, nil
}

func (i *image) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDiffID(h)
	if err != nil {
		return nil, err
	}
	return &layer{Layer: l, ctx: i.ctx}, nil
}

type layer struct {
	v1.Layer
	ctx context.Context
}

func (l *layer) Compressed() (io.ReadCloser, error) { return bind(l.ctx)(l.Layer.Compressed()) }

func (l *layer) Uncompressed() (io.ReadCloser, error) { return bind(l.ctx)(l.Layer.Uncompressed()) }

func bind(ctx context.Context) func(io.ReadCloser, error) (io.ReadCloser, error) {
	return func(rc io.ReadCloser, err error) (io.ReadCloser, error) {
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			rc.Close()
			return nil, err
		}
		r := &reader{rc: rc, ctx: ctx}
		r.stop = context.AfterFunc(ctx, func() { r.close() })
		return r, nil
	}
}

type reader struct {
	rc   io.ReadCloser
	ctx  context.Context
	stop func() bool
	once sync.Once
	err  error
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		if cerr := r.ctx.Err(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

func (r *reader) close() error {
	r.once.Do(func() { r.err = r.rc.Close() })
	return r.err
}

func (r *reader) Close() error {
	r.stop()
	return r.close()
}
