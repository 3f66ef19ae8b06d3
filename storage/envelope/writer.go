package envelope

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// NewWriter returns a writer that encrypts everything written to it with dk
// and writes the ciphertext object — header, then segments — to w. ad is
// associated data bound to the ciphertext: reading it back requires the same
// ad (the storage layer passes the object key). ad may be nil.
//
// The writer buffers one segment: it writes to w once per complete segment
// (the header goes out with the first), so a plaintext of up to 65480 bytes
// reaches w in a single Write, at Close. Close encrypts and writes the last
// segment; it does not close w. Exactly [CiphertextSize](n) bytes are
// written for n bytes of plaintext, and the output is byte for byte what
// Tink's own streaming writer would produce with the same random salt and
// nonce prefix.
//
// A blob is complete only once Close has returned nil. After any error from
// w the writer is unusable, every later call returns that error, and the
// ciphertext written so far must be discarded. Close must be called even
// then, to release the segment buffer; it returns that same error.
//
// The writer implements [io.ReaderFrom], so [io.Copy] reads straight into its
// segment buffer. It is not safe for concurrent use. dk may be destroyed
// once NewWriter returns.
func NewWriter(w io.Writer, dk *DataKey, ad []byte) (io.WriteCloser, error) {
	return newWriter(std, w, dk, ad, rand.Reader)
}

var errWriteClosed = errors.New("envelope: write on closed writer")

type writer struct {
	f     format
	w     io.Writer
	aead  cipher.AEAD
	nonce [nonceSize]byte
	buf   *[]byte // f.seg+1 bytes: [header] plaintext tag, plus one spare byte for ReadFrom
	base  int     // where the current segment's plaintext starts in buf: HeaderSize for segment 0, else 0
	n     int     // plaintext bytes buffered at buf[base:]
	seg   int64   // index of the segment being filled
	err   error   // sticky: from w, or errWriteClosed after Close
}

// newWriter draws the salt and the nonce prefix from random; tests pass a
// fixed source to pin the format with known-answer vectors.
func newWriter(f format, w io.Writer, dk *DataKey, ad []byte, random io.Reader) (*writer, error) {
	if w == nil {
		return nil, errors.New("envelope: nil io.Writer")
	}
	if err := dk.usable(); err != nil {
		return nil, err
	}
	ew := &writer{f: f, w: w, base: HeaderSize}
	ew.buf = getBuf(f)
	hdr := (*ew.buf)[:HeaderSize]
	hdr[0] = HeaderSize
	// Salt, then nonce prefix, in two reads, exactly as Tink draws them.
	salt, prefix := hdr[1:1+KeySize], hdr[1+KeySize:]
	_, err := io.ReadFull(random, salt)
	if err == nil {
		_, err = io.ReadFull(random, prefix)
	}
	copy(ew.nonce[:], prefix)
	if err == nil {
		ew.aead, err = newAEAD(dk, salt, ad)
	}
	if err != nil {
		putBuf(f, ew.buf)
		return nil, fmt.Errorf("envelope: new writer: %w", err)
	}
	return ew, nil
}

// room returns the plaintext capacity of the current segment.
func (w *writer) room() int { return int(w.f.seg) - TagSize - w.base }

// Write implements [io.Writer].
func (w *writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if w.n == w.room() {
			// A full segment is sealed only once more plaintext arrives, so
			// that the final segment is never empty (unless all of it is).
			if err := w.flush(false); err != nil {
				return written, err
			}
		}
		if w.n == 0 && len(p) > w.room() {
			// Fast path: seal straight from p, saving a copy.
			k := w.room()
			if err := w.seal(p[:k], false); err != nil {
				return written, err
			}
			written += k
			p = p[k:]
			continue
		}
		k := copy((*w.buf)[w.base+w.n:w.base+w.room()], p)
		w.n += k
		written += k
		p = p[k:]
	}
	return written, nil
}

// ReadFrom implements [io.ReaderFrom]: it reads r to EOF, straight into the
// segment buffer. An error from r is returned as is and leaves the writer
// usable; an error from the underlying writer is sticky.
func (w *writer) ReadFrom(r io.Reader) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	var total int64
	for {
		// Read up to one byte beyond the segment, into the tag's space: if it
		// arrives, the segment is not the last one.
		room := w.room()
		k, err := r.Read((*w.buf)[w.base+w.n : w.base+room+1])
		if k < 0 || k > room+1-w.n {
			return total, errors.New("envelope: source returned an invalid count")
		}
		w.n += k
		total += int64(k)
		if w.n == room+1 {
			extra := (*w.buf)[w.base+room]
			w.n = room
			if ferr := w.flush(false); ferr != nil {
				return total, ferr
			}
			(*w.buf)[w.base] = extra
			w.n = 1
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// flush seals the buffered plaintext in place and writes it out.
func (w *writer) flush(last bool) error {
	b := *w.buf
	return w.seal(b[w.base:w.base+w.n], last)
}

// seal encrypts pt — the buffered plaintext or, on the fast path, caller's
// bytes — into the segment buffer and writes the segment (with the header
// before segment 0).
func (w *writer) seal(pt []byte, last bool) error {
	if w.seg >= maxSegments || (!last && w.seg == maxSegments-1) {
		w.err = fmt.Errorf("envelope: plaintext exceeds %d bytes", w.f.maxPlain())
		return w.err
	}
	putNonce(&w.nonce, w.seg, last)
	b := *w.buf
	ct := w.aead.Seal(b[w.base:w.base], w.nonce[:], pt, nil)
	out := b[:w.base+len(ct)]
	if k, err := w.w.Write(out); err != nil || k != len(out) {
		if err == nil {
			err = io.ErrShortWrite
		}
		w.err = fmt.Errorf("envelope: write segment %d: %w", w.seg, err)
		return w.err
	}
	w.seg++
	w.base = 0
	w.n = 0
	return nil
}

// Close seals and writes the final segment, then releases the buffer. It
// does not close the underlying writer.
func (w *writer) Close() error {
	if w.err == nil {
		if err := w.flush(true); err == nil {
			w.err = errWriteClosed
		}
	}
	if w.buf != nil {
		clear(*w.buf)
		putBuf(w.f, w.buf)
		w.buf = nil
	}
	if w.err == errWriteClosed {
		return nil
	}
	return w.err
}
