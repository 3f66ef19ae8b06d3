package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/envelope"
	"github.com/opencontainers/go-digest"
	"gocloud.dev/gcerrors"
)

// BlobReader reads a range of a stored blob. It fetches and decrypts only
// the objects and segments that hold the range, one at a time, in constant
// memory. It is not safe for concurrent use.
type BlobReader struct {
	ctx    context.Context
	s      *Store
	blob   *driver.Blob
	dk     *envelope.DataKey
	off    int64 // next content offset to read
	end    int64 // content offset where the range ends
	part   int   // index of the part holding off
	pstart int64 // content offset where parts[part] starts
	cur    io.ReadCloser
	err    error
}

// OpenBlob opens the content of d from byte offset off for length bytes
// (length -1 means to the end). A range that does not lie within the blob is
// a *RangeError; an unknown blob an error matching ErrNotFound. The caller
// closes the reader. Reading stored content that fails its integrity check
// returns an error matching ErrCorrupt, never the altered bytes.
func (s *Store) OpenBlob(ctx context.Context, d digest.Digest, off, length int64) (*BlobReader, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := ValidateDigest(d); err != nil {
		return nil, err
	}
	b, err := s.meta.GetBlob(ctx, d)
	if err != nil {
		return nil, wrap("open blob", string(d), err)
	}
	if off < 0 || off > b.Size || length < -1 || length > b.Size-off {
		return nil, &RangeError{Offset: off, Length: length, Size: b.Size}
	}
	end := b.Size
	if length >= 0 {
		end = off + length
	}
	br := &BlobReader{ctx: ctx, s: s, blob: b, off: off, end: end}
	if b.Encryption != nil && end > off {
		if br.dk, err = s.unwrap(ctx, b.Encryption); err != nil {
			return nil, wrap("open blob", string(d), err)
		}
	}
	return br, nil
}

// Size returns the size of the whole blob.
func (r *BlobReader) Size() int64 { return r.blob.Size }

// Digest returns the blob's digest.
func (r *BlobReader) Digest() digest.Digest { return r.blob.Digest }

// Read implements io.Reader.
func (r *BlobReader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if r.off >= r.end {
			r.err = io.EOF
			return 0, io.EOF
		}
		if r.cur == nil {
			if err := r.openPart(); err != nil {
				r.err = err
				return 0, err
			}
		}
		if rem := r.end - r.off; int64(len(p)) > rem {
			p = p[:rem]
		}
		n, err := r.cur.Read(p)
		r.off += int64(n)
		if err == io.EOF {
			_ = r.cur.Close()
			r.cur = nil
			err = nil
			if n == 0 && r.off < r.pstart+r.blob.Parts[r.part].Size {
				r.err = r.corrupt(io.ErrUnexpectedEOF)
				return 0, r.err
			}
		}
		if err != nil {
			r.err = r.classify(err)
			return n, r.err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// WriteTo implements io.WriterTo: the plaintext of each part is written
// to w straight from the decrypter's segment buffer, without the copy
// through a caller's buffer that Read needs, and in writes of a whole
// segment. Errors reading the blob are those of Read; an error from w is
// returned as is. Either ends the reader.
func (r *BlobReader) WriteTo(w io.Writer) (int64, error) {
	if r.err != nil || r.end-r.off < dropMinSize || !r.s.dropsCache() {
		return r.writeTo(w)
	}
	// A long read from a local disk: send on another goroutine, so that
	// waiting for the disk overlaps sending what was already read.
	p := r.s.newPipe()
	sent := make(chan error, 1)
	go func() {
		_, err := p.WriteTo(w)
		p.stop(cmp.Or(err, io.ErrClosedPipe))
		sent <- err
	}()
	n, err := r.writeTo(p)
	_ = p.CloseWithError(err)
	if serr := <-sent; err == nil && serr != nil {
		r.err = serr
		return n, serr
	}
	return n, err
}

func (r *BlobReader) writeTo(w io.Writer) (int64, error) {
	var total int64
	ew := &errWriter{w: w}
	for {
		if r.err != nil {
			if r.err == io.EOF {
				return total, nil
			}
			return total, r.err
		}
		if r.off >= r.end {
			r.err = io.EOF
			return total, nil
		}
		if r.cur == nil {
			if err := r.openPart(); err != nil {
				r.err = err
				return total, err
			}
		}
		// The part's reader ends where the part or the range does.
		want := min(r.pstart+r.blob.Parts[r.part].Size, r.end) - r.off
		var n int64
		var err error
		if wt, ok := r.cur.(io.WriterTo); ok {
			n, err = wt.WriteTo(ew)
		} else {
			n, err = io.CopyBuffer(ew, r.cur, make([]byte, 64<<10))
		}
		r.off += n
		total += n
		switch {
		case err != nil && ew.err != nil:
			r.err = err
			return total, err
		case err != nil:
			r.err = r.classify(err)
			return total, r.err
		case n != want:
			r.err = r.corrupt(io.ErrUnexpectedEOF)
			return total, r.err
		}
		_ = r.cur.Close()
		r.cur = nil
	}
}

// errWriter remembers the error of its writer, to tell write errors from
// read errors in WriteTo.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// openPart opens the part holding r.off, from r.off up to the range's end
// or the part's end.
func (r *BlobReader) openPart() error {
	for r.part < len(r.blob.Parts) && r.off >= r.pstart+r.blob.Parts[r.part].Size {
		r.pstart += r.blob.Parts[r.part].Size
		r.part++
	}
	if r.part >= len(r.blob.Parts) {
		return r.corrupt(errors.New("parts are shorter than the blob"))
	}
	p := r.blob.Parts[r.part]
	inOff := r.off - r.pstart
	n := min(p.Size-inOff, r.end-r.off)
	key := p.Key
	long := n >= dropMinSize
	if r.dk == nil {
		rc, err := r.s.openObject(r.ctx, key, inOff, n, long)
		if err != nil {
			return r.classify(err)
		}
		r.cur = rc
		return nil
	}
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return r.s.openObject(ctx, key, off, n, long)
	}
	rc, err := envelope.NewRangeReader(r.ctx, open, p.Size, r.dk, []byte(key), inOff, n)
	if err != nil {
		return r.classify(err)
	}
	r.cur = rc
	return nil
}

func (r *BlobReader) corrupt(err error) error {
	return fmt.Errorf("storage: read blob %s: %w: %w", r.blob.Digest, ErrCorrupt, err)
}

// classify turns errors from the bucket and the decrypter into the store's
// errors: integrity failures and vanished objects are ErrCorrupt.
func (r *BlobReader) classify(err error) error {
	switch {
	case errors.Is(err, envelope.ErrCorrupt), errors.Is(err, io.ErrUnexpectedEOF):
		return r.corrupt(err)
	case gcerrors.Code(err) == gcerrors.NotFound:
		return r.corrupt(err)
	}
	return fmt.Errorf("storage: read blob %s: %w", r.blob.Digest, err)
}

// Close releases the reader's resources.
func (r *BlobReader) Close() error {
	if r.dk != nil {
		r.dk.Destroy()
		r.dk = nil
	}
	if r.err == nil {
		r.err = errors.New("storage: read from closed BlobReader")
	}
	if r.cur != nil {
		err := r.cur.Close()
		r.cur = nil
		return err
	}
	return nil
}
