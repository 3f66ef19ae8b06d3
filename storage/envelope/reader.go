package envelope

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"sync"
)

// RangeOpener opens the byte range [off, off+n) of the stored ciphertext
// object, or [off, end of object) when n is -1. off is never negative and
// never beyond the size the object should have. The returned reader must
// yield exactly the bytes of that range and then io.EOF; fewer bytes are
// reported as truncation, more as trailing data, both as [ErrCorrupt].
// Errors from the opener and from its reader are returned wrapped with %w,
// so a "not found" classification survives. The caller closes the reader.
// open may be called from two goroutines at once (see [NewRangeReader]).
//
// With a *blob.Bucket from gocloud.dev/blob:
//
//	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
//		return bucket.NewRangeReader(ctx, key, off, n, nil)
//	}
type RangeOpener func(ctx context.Context, off, n int64) (io.ReadCloser, error)

var errClosed = errors.New("envelope: read on closed reader")

// NewRangeReader returns a reader of the plaintext bytes [off, off+n) of a
// ciphertext object written by [NewWriter] with the same dk and ad, whose
// plaintext is plainSize bytes long. A negative n, or a range running past
// plainSize, reads to the end. off must be in [0, plainSize].
//
// Only the header and the segments covering the range are fetched: one call
// to open when the range starts in the first segment, otherwise two, made
// concurrently from two goroutines: [0, HeaderSize) for the header, and the
// segments. A range that includes the last segment is opened to the end of
// the object (n = -1) so that trailing data is detected. An empty range of a
// non-empty object performs no I/O.
//
// NewRangeReader opens the object and authenticates the first segment of the
// range before returning, so a missing object, a wrong key and most
// corruption are reported here rather than by Read. Each later segment is
// authenticated before any of its bytes are returned: Read never returns
// unauthenticated plaintext. Authentication failure, truncation, trailing
// data and a bad header yield an error matching [ErrCorrupt]; errors are
// sticky.
//
// The reader uses one pooled buffer of SegmentSize bytes, whatever the size
// of the range, and implements [io.WriterTo] to avoid a copy in [io.Copy].
// Close closes the underlying reader and must be called. The reader is not
// safe for concurrent use. dk may be destroyed once NewRangeReader returns.
func NewRangeReader(ctx context.Context, open RangeOpener, plainSize int64, dk *DataKey, ad []byte, off, n int64) (io.ReadCloser, error) {
	return newRangeReader(ctx, std, open, plainSize, dk, ad, off, n)
}

type rangeReader struct {
	f         format
	rc        io.ReadCloser
	aead      cipher.AEAD
	nonce     [nonceSize]byte
	buf       *[]byte // len f.seg+1: one segment plus one byte to probe for trailing data
	plainSize int64
	seg       int64  // next segment to load
	last      int64  // last segment of the range
	final     int64  // last segment of the object
	skip      int64  // plaintext bytes to drop from the start of the next segment
	remain    int64  // plaintext bytes of the range not yet loaded into win
	win       []byte // authenticated plaintext not yet returned
	err       error  // sticky
}

// segPool holds segment buffers of the standard format for writers and
// readers: SegmentSize bytes plus one spare.
var segPool = sync.Pool{New: func() any {
	b := make([]byte, SegmentSize+1)
	return &b
}}

func getBuf(f format) *[]byte {
	if f.seg == SegmentSize {
		return segPool.Get().(*[]byte)
	}
	b := make([]byte, f.seg+1)
	return &b
}

// putBuf returns a buffer to the pool. The caller has cleared it.
func putBuf(f format, b *[]byte) {
	if f.seg == SegmentSize {
		segPool.Put(b)
	}
}

func newRangeReader(ctx context.Context, f format, open RangeOpener, plainSize int64, dk *DataKey, ad []byte, off, n int64) (io.ReadCloser, error) {
	if open == nil {
		return nil, errors.New("envelope: nil RangeOpener")
	}
	if err := dk.usable(); err != nil {
		return nil, err
	}
	if plainSize < 0 || plainSize > f.maxPlain() {
		return nil, fmt.Errorf("envelope: plaintext size %d out of range", plainSize)
	}
	if off < 0 || off > plainSize {
		return nil, fmt.Errorf("envelope: range offset %d outside plaintext of %d bytes", off, plainSize)
	}
	if n < 0 || n > plainSize-off {
		n = plainSize - off
	}
	if n == 0 && plainSize > 0 {
		return io.NopCloser(eofReader{}), nil
	}

	first, last := int64(0), int64(0)
	if n > 0 {
		first, last = f.segmentOf(off), f.segmentOf(off+n-1)
	}
	final := f.numSegments(plainSize) - 1
	end := f.cipherStart(last) + f.plainLen(last, plainSize) + TagSize
	length := func(start int64) int64 {
		if last == final {
			return -1
		}
		return end - start
	}

	var hdr [HeaderSize]byte
	var rc io.ReadCloser
	if first == 0 {
		var err error
		if rc, err = open(ctx, 0, length(0)); err != nil {
			return nil, fmt.Errorf("envelope: open: %w", err)
		}
		if err := readHeader(rc, &hdr); err != nil {
			rc.Close()
			return nil, err
		}
	} else {
		// Fetch the header and open the segments concurrently: with a remote
		// store that saves a round trip before the first byte.
		hdone := make(chan error, 1)
		go func() {
			hrc, err := open(ctx, 0, HeaderSize)
			if err != nil {
				hdone <- fmt.Errorf("envelope: open header: %w", err)
				return
			}
			err = readHeader(hrc, &hdr)
			hrc.Close()
			hdone <- err
		}()
		start := f.cipherStart(first)
		var err error
		rc, err = open(ctx, start, length(start))
		herr := <-hdone
		if err != nil {
			return nil, fmt.Errorf("envelope: open: %w", err)
		}
		if herr != nil {
			rc.Close()
			return nil, herr
		}
	}

	aead, err := newAEAD(dk, hdr[1:1+KeySize], ad)
	if err != nil {
		rc.Close()
		return nil, err
	}
	r := &rangeReader{
		f:         f,
		rc:        rc,
		aead:      aead,
		plainSize: plainSize,
		seg:       first,
		last:      last,
		final:     final,
		skip:      off - f.plainStart(first),
		remain:    n,
	}
	copy(r.nonce[:], hdr[1+KeySize:])
	r.buf = getBuf(f)
	if err := r.fill(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func readHeader(r io.Reader, hdr *[HeaderSize]byte) error {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return &CorruptError{Segment: -1, Reason: "truncated"}
		}
		return fmt.Errorf("envelope: read header: %w", err)
	}
	if hdr[0] != HeaderSize {
		return &CorruptError{Segment: -1, Reason: fmt.Sprintf("header length byte is %d, want %d", hdr[0], HeaderSize)}
	}
	return nil
}

// fill reads, authenticates and decrypts segment r.seg in place and makes
// the part of it inside the range available in r.win.
func (r *rangeReader) fill() error {
	i := r.seg
	buf := *r.buf
	ctLen := r.f.plainLen(i, r.plainSize) + TagSize
	ct := buf[:ctLen]
	corrupt := func(reason string) error {
		return &CorruptError{Segment: i, Offset: r.f.cipherStart(i), Reason: reason}
	}
	if _, err := io.ReadFull(r.rc, ct); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return corrupt("truncated")
		}
		return fmt.Errorf("envelope: read segment %d: %w", i, err)
	}
	if i == r.last {
		// The range must end exactly here: probe for one more byte.
		switch _, err := io.ReadFull(r.rc, buf[ctLen:ctLen+1]); err {
		case io.EOF:
		case nil:
			return corrupt("trailing data")
		default:
			return fmt.Errorf("envelope: read segment %d: %w", i, err)
		}
	}
	putNonce(&r.nonce, i, i == r.final)
	pt, err := r.aead.Open(ct[:0], r.nonce[:], ct, nil)
	if err != nil {
		return corrupt("authentication failed")
	}
	pt = pt[r.skip:]
	r.skip = 0
	if int64(len(pt)) > r.remain {
		pt = pt[:r.remain]
	}
	r.remain -= int64(len(pt))
	r.win = pt
	r.seg++
	return nil
}

// Read implements [io.Reader].
func (r *rangeReader) Read(p []byte) (int, error) {
	if len(p) == 0 && r.err == nil {
		return 0, nil
	}
	for len(r.win) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.remain == 0 {
			return 0, io.EOF
		}
		if r.err = r.fill(); r.err != nil {
			return 0, r.err
		}
	}
	n := copy(p, r.win)
	r.win = r.win[n:]
	return n, nil
}

// WriteTo implements [io.WriterTo], writing authenticated plaintext straight
// from the segment buffer.
func (r *rangeReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.win) > 0 {
			n, err := w.Write(r.win)
			total += int64(n)
			r.win = r.win[n:]
			if err != nil {
				return total, err
			}
			continue
		}
		if r.err != nil {
			return total, r.err
		}
		if r.remain == 0 {
			return total, nil
		}
		if r.err = r.fill(); r.err != nil {
			return total, r.err
		}
	}
}

// Close closes the underlying reader and releases the segment buffer.
func (r *rangeReader) Close() error {
	if r.buf == nil {
		return nil
	}
	err := r.rc.Close()
	r.win = nil
	r.err = errClosed
	clear(*r.buf)
	putBuf(r.f, r.buf)
	r.buf = nil
	return err
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
