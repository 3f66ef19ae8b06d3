package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// dirBucket is a gocloud.dev blob driver that stores each object as a file
// under root. A write goes to a temporary file that is fsynced, renamed into
// place and followed by an fsync of its directory, so an object that was
// reported written survives a crash. Keys may contain '/' (directories).
type dirBucket struct {
	root string
}

func (b *dirBucket) path(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", errInvalidKey
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

var errInvalidKey = errors.New("dirbucket: invalid key")

func (b *dirBucket) ErrorCode(err error) gcerrors.ErrorCode {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return gcerrors.NotFound
	case errors.Is(err, errInvalidKey):
		return gcerrors.InvalidArgument
	case errors.Is(err, context.Canceled):
		return gcerrors.Canceled
	}
	return gcerrors.Unknown
}

func (b *dirBucket) As(any) bool             { return false }
func (b *dirBucket) ErrorAs(error, any) bool { return false }
func (b *dirBucket) Close() error            { return nil }

func (b *dirBucket) Attributes(_ context.Context, key string) (*driver.Attributes, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{ContentType: "application/octet-stream", ModTime: fi.ModTime(), Size: fi.Size()}, nil
}

// ListPaged lists every object in one page, in key order (the registry
// never lists on a request path; tests and maintenance tools do).
func (b *dirBucket) ListPaged(_ context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	page := &driver.ListPage{}
	err := filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return err
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, opts.Prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		page.Objects = append(page.Objects, &driver.ListObject{Key: key, ModTime: fi.ModTime(), Size: fi.Size()})
		return nil
	})
	sort.Slice(page.Objects, func(i, j int) bool { return page.Objects[i].Key < page.Objects[j].Key })
	return page, err
}

func (b *dirBucket) NewRangeReader(_ context.Context, key string, offset, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	var r io.Reader = f
	if length >= 0 {
		r = io.LimitReader(f, length)
	}
	return &fileReader{Reader: r, f: f, attrs: driver.ReaderAttributes{ContentType: "application/octet-stream", ModTime: fi.ModTime(), Size: fi.Size()}}, nil
}

type fileReader struct {
	io.Reader
	f     *os.File
	attrs driver.ReaderAttributes
}

func (r *fileReader) Close() error                         { return r.f.Close() }
func (r *fileReader) Attributes() *driver.ReaderAttributes { return &r.attrs }
func (r *fileReader) As(any) bool                          { return false }

func (b *dirBucket) NewTypedWriter(ctx context.Context, key, _ string, _ *driver.WriterOptions) (driver.Writer, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	f, err := os.OpenFile(filepath.Join(filepath.Dir(p), ".tmp-"+hex.EncodeToString(rnd[:])), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	return &fileWriter{ctx: ctx, f: f, path: p}, nil
}

// fileWriter publishes the object on Close, unless the write's context was
// cancelled first: then the temporary file is removed and nothing appears.
type fileWriter struct {
	ctx  context.Context
	f    *os.File
	path string
}

func (w *fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *fileWriter) Close() error {
	tmp := w.f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if err := w.ctx.Err(); err != nil {
		w.f.Close()
		return err
	}
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, w.path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(w.path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (b *dirBucket) Copy(context.Context, string, string, *driver.CopyOptions) error {
	return errors.New("dirbucket: copy is not supported (Berth never copies objects)")
}

func (b *dirBucket) Delete(_ context.Context, key string, _ *driver.DeleteOptions) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

func (b *dirBucket) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errors.New("dirbucket: signed URLs are not supported")
}
