package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
)

// blockSize is the period of the generated content. Each block of a blob is
// one shared pseudo-random block whose first headerSize bytes are replaced by
// a header unique to (blob key, block index), so no two blocks of any blob
// are equal and no blob is held in memory.
const (
	blockSize  = 1 << 20
	headerSize = 32
)

var baseBlock = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewChaCha8([32]byte{'b', 'e', 'r', 't', 'h'}))
	b := make([]byte, blockSize)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
})

// blobSpec names one generated blob: its content is a function of key and
// size alone.
type blobSpec struct {
	key    string
	size   int64
	digest string // "sha256:<hex>"
}

// blobReader streams the content of a blobSpec.
type blobReader struct {
	keySum [sha256.Size]byte
	size   int64
	off    int64
	block  []byte
	hdr    [headerSize]byte
	hdrIdx int64
}

func newBlobReader(key string, size int64) *blobReader {
	return &blobReader{keySum: sha256.Sum256([]byte(key)), size: size, block: baseBlock(), hdrIdx: -1}
}

func (r *blobReader) header(idx int64) []byte {
	if idx != r.hdrIdx {
		copy(r.hdr[:16], r.keySum[:16])
		binary.BigEndian.PutUint64(r.hdr[16:], uint64(idx))
		binary.BigEndian.PutUint64(r.hdr[24:], uint64(r.size))
		r.hdrIdx = idx
	}
	return r.hdr[:]
}

// ReadAt fills p with the content at off without moving the read offset.
func (r *blobReader) readAt(p []byte, off int64) int {
	if off >= r.size {
		return 0
	}
	if rem := r.size - off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		idx := off / blockSize
		pos := int(off % blockSize)
		var c int
		if pos < headerSize {
			c = copy(p[n:], r.header(idx)[pos:])
		} else {
			c = copy(p[n:], r.block[pos:])
		}
		n += c
		off += int64(c)
	}
	return n
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n := r.readAt(p, r.off)
	r.off += int64(n)
	return n, nil
}

// WriteTo hands w whole blocks, so copies into a connection go out in large
// writes.
func (r *blobReader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for r.off < r.size {
		n := r.readAt(buf, r.off)
		m, err := w.Write(buf[:n])
		r.off += int64(m)
		total += int64(m)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// section returns a reader of content [off, off+n).
func (r *blobReader) section(off, n int64) io.Reader {
	return io.NewSectionReader(readerAtFunc(func(p []byte, o int64) (int, error) {
		c := r.readAt(p, o)
		if c < len(p) {
			return c, io.EOF
		}
		return c, nil
	}), off, n)
}

type readerAtFunc func(p []byte, off int64) (int, error)

func (f readerAtFunc) ReadAt(p []byte, off int64) (int, error) { return f(p, off) }

// digestCache computes each blob's digest once per run, before any timing.
type digestCache struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *digestCache) spec(key string, size int64) blobSpec {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]string{}
	}
	mk := key + "\x00" + strconv.FormatInt(size, 10)
	d, ok := c.m[mk]
	if !ok {
		h := sha256.New()
		_, _ = newBlobReader(key, size).WriteTo(h)
		d = "sha256:" + hex.EncodeToString(h.Sum(nil))
		c.m[mk] = d
	}
	return blobSpec{key: key, size: size, digest: d}
}
