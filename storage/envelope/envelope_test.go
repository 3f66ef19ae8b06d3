package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"
	"testing/iotest"
	"time"

	"github.com/tink-crypto/tink-go/v2/streamingaead/subtle"
	"gocloud.dev/gcerrors"
	"gocloud.dev/secrets/localsecrets"
)

// tiny formats reach every boundary with a few hundred bytes. 57 is the
// smallest segment Tink accepts: a 1-byte first segment, then 41 bytes.
var tinyFormats = []format{{seg: 57}, {seg: 64}, {seg: 100}}

func mustKey(t testing.TB) *DataKey {
	t.Helper()
	dk, err := NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

func randBytes(n int64) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// interesting returns plaintext sizes around the segment boundaries of f.
func interesting(f format) []int64 {
	var out []int64
	for _, b := range []int64{0, f.firstPt(), f.firstPt() + f.ptSeg(), f.firstPt() + 2*f.ptSeg(), f.firstPt() + 5*f.ptSeg()} {
		for d := int64(-2); d <= 2; d++ {
			if b+d >= 0 {
				out = append(out, b+d)
			}
		}
	}
	return out
}

func encrypt(t testing.TB, f format, dk *DataKey, ad, pt []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newWriter(f, &buf, dk, ad, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pt); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tinkEncrypt encrypts with Tink's own writer, writing in uneven chunks.
func tinkEncrypt(t testing.TB, f format, dk *DataKey, ad, pt []byte) []byte {
	t.Helper()
	a, err := subtle.NewAESGCMHKDF(dk.s.b[:], "SHA256", KeySize, int(f.seg), 0)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := a.NewEncryptingWriter(&buf, ad)
	if err != nil {
		t.Fatal(err)
	}
	for rest := pt; len(rest) > 0; {
		k := min(len(rest), 1+len(rest)/3)
		if _, err := w.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tinkDecrypt decrypts a whole object with Tink's own reader.
func tinkDecrypt(f format, dk *DataKey, ad, ct []byte) ([]byte, error) {
	a, err := subtle.NewAESGCMHKDF(dk.s.b[:], "SHA256", KeySize, int(f.seg), 0)
	if err != nil {
		return nil, err
	}
	r, err := a.NewDecryptingReader(bytes.NewReader(ct), ad)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// memObject is a stored ciphertext object with a RangeOpener that records
// the requests made.
type memObject struct {
	mu       sync.Mutex
	data     []byte
	calls    [][2]int64
	wrap     func(io.Reader) io.Reader
	extra    int // bytes returned beyond a bounded request (a misbehaving store)
	unclosed int // readers opened and not yet closed
}

type countCloser struct {
	io.Reader
	m    *memObject
	once sync.Once
}

func (c *countCloser) Close() error {
	c.once.Do(func() {
		c.m.mu.Lock()
		c.m.unclosed--
		c.m.mu.Unlock()
	})
	return nil
}

func (m *memObject) open(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	m.mu.Lock()
	m.calls = append(m.calls, [2]int64{off, n})
	m.unclosed++
	m.mu.Unlock()
	if off < 0 || n < -1 || off > int64(len(m.data)) {
		m.mu.Lock()
		m.unclosed--
		m.mu.Unlock()
		return nil, fmt.Errorf("bad range %d,%+d of object of %d bytes", off, n, len(m.data))
	}
	end := int64(len(m.data))
	if n >= 0 {
		end = min(end, off+n+int64(m.extra))
	}
	var r io.Reader = bytes.NewReader(m.data[off:end])
	if m.wrap != nil {
		r = m.wrap(r)
	}
	return &countCloser{Reader: r, m: m}, nil
}

func readRange(f format, obj *memObject, plainSize int64, dk *DataKey, ad []byte, off, n int64) ([]byte, error) {
	got, err := readRange1(f, obj, plainSize, dk, ad, off, n)
	if obj.unclosed != 0 {
		return got, fmt.Errorf("%d readers left open (after %v)", obj.unclosed, err)
	}
	return got, err
}

func readRange1(f format, obj *memObject, plainSize int64, dk *DataKey, ad []byte, off, n int64) ([]byte, error) {
	r, err := newRangeReader(context.Background(), f, obj.open, plainSize, dk, ad, off, n)
	if err != nil {
		return nil, err
	}
	got, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return got, err
}

func TestFormatMath(t *testing.T) {
	if HeaderSize != 40 || std.firstPt() != 65480 || std.ptSeg() != 65520 {
		t.Fatalf("layout constants: header %d, first %d, segment %d", HeaderSize, std.firstPt(), std.ptSeg())
	}
	if got := CiphertextSize(0); got != 56 {
		t.Errorf("CiphertextSize(0) = %d, want 56", got)
	}
	if got := CiphertextSize(MaxPlaintextSize); got != SegmentSize*maxSegments {
		t.Errorf("CiphertextSize(Max) = %d, want %d", got, int64(SegmentSize*maxSegments))
	}
	dk := mustKey(t)
	for _, f := range append(tinyFormats, std) {
		var sizes []int64
		if f == std {
			sizes = interesting(f)
		} else {
			for n := range int64(400) {
				sizes = append(sizes, n)
			}
		}
		for _, n := range sizes {
			ct := tinkEncrypt(t, f, dk, nil, randBytes(n))
			if got := f.ciphertextSize(n); got != int64(len(ct)) {
				t.Fatalf("seg %d: ciphertextSize(%d) = %d, Tink wrote %d", f.seg, n, got, len(ct))
			}
			if got, err := f.plaintextSize(int64(len(ct))); err != nil || got != n {
				t.Fatalf("seg %d: plaintextSize(%d) = %d, %v; want %d", f.seg, len(ct), got, err, n)
			}
			// Every segment boundary predicted by the layout is real: the sum of
			// segment lengths is the object length.
			sum := int64(HeaderSize)
			for i := range f.numSegments(n) {
				if f.cipherStart(i) != sum {
					t.Fatalf("seg %d n %d: cipherStart(%d) = %d, want %d", f.seg, n, i, f.cipherStart(i), sum)
				}
				sum += f.plainLen(i, n) + TagSize
				if i < f.numSegments(n)-1 && f.plainLen(i, n) == 0 {
					t.Fatalf("empty non-final segment")
				}
			}
			if sum != int64(len(ct)) {
				t.Fatalf("seg %d n %d: segments sum to %d, object is %d", f.seg, n, sum, len(ct))
			}
		}
	}
	// Sizes that no plaintext produces.
	for _, c := range []int64{-1, 0, 55, SegmentSize + 1, SegmentSize + 16, 2*SegmentSize + 5} {
		if _, err := PlaintextSize(c); !errors.Is(err, ErrCorrupt) {
			t.Errorf("PlaintextSize(%d) = %v, want ErrCorrupt", c, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("CiphertextSize(-1) did not panic")
		}
	}()
	CiphertextSize(-1)
}

func TestRoundTrip(t *testing.T) {
	dk := mustKey(t)
	ad := []byte("blobs/sha256/ab/abcdef")
	sizes := append(interesting(std), 1<<20+7, 3<<20)
	for _, n := range sizes {
		pt := randBytes(n)
		for name, ct := range map[string][]byte{
			"NewWriter":  encrypt(t, std, dk, ad, pt),
			"TinkWriter": tinkEncrypt(t, std, dk, ad, pt),
		} {
			if int64(len(ct)) != CiphertextSize(n) {
				t.Fatalf("%s n=%d: %d bytes, CiphertextSize says %d", name, n, len(ct), CiphertextSize(n))
			}
			obj := &memObject{data: ct}
			got, err := readRange(std, obj, n, dk, ad, 0, -1)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s n=%d: NewRangeReader: %v (equal %v)", name, n, err, bytes.Equal(got, pt))
			}
			if len(obj.calls) != 1 {
				t.Errorf("%s n=%d: %d requests, want 1", name, n, len(obj.calls))
			}
			got, err = tinkDecrypt(std, dk, ad, ct)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s n=%d: Tink reader: %v", name, n, err)
			}
		}
	}
}

// TestEveryRange reads every range of every small plaintext with tiny
// segments, checking the bytes, the number of requests and that only the
// needed ciphertext is fetched.
func TestEveryRange(t *testing.T) {
	dk := mustKey(t)
	ad := []byte("k")
	formats := tinyFormats
	if testing.Short() || raceEnabled {
		formats = formats[:1]
	}
	for _, f := range formats {
		// Every size up to two full segments, then sizes around the next
		// boundaries.
		var sizes []int64
		for size := range f.firstPt() + f.ptSeg() + 2 {
			sizes = append(sizes, size)
		}
		for _, b := range []int64{f.firstPt() + 2*f.ptSeg(), f.firstPt() + 3*f.ptSeg()} {
			sizes = append(sizes, b-1, b, b+1)
		}
		for _, size := range sizes {
			pt := randBytes(size)
			ct := tinkEncrypt(t, f, dk, ad, pt)
			for off := range size + 1 {
				for n := int64(-1); n <= size-off+1; n++ {
					obj := &memObject{data: ct}
					got, err := readRange(f, obj, size, dk, ad, off, n)
					want := pt[off:]
					if n >= 0 && n <= size-off {
						want = pt[off : off+n]
					}
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("seg %d size %d [%d,+%d): got %d bytes, %v", f.seg, size, off, n, len(got), err)
					}
					checkRequests(t, f, obj, size, off, int64(len(want)))
				}
			}
		}
	}
}

func checkRequests(t *testing.T, f format, obj *memObject, size, off, n int64) {
	t.Helper()
	if n == 0 && size > 0 {
		if len(obj.calls) != 0 {
			t.Fatalf("empty range made requests %v", obj.calls)
		}
		return
	}
	first := f.segmentOf(off)
	last := f.segmentOf(max(off+n-1, 0))
	wantCalls := 1
	if first > 0 {
		wantCalls = 2
	}
	if len(obj.calls) != wantCalls {
		t.Fatalf("size %d [%d,+%d): requests %v, want %d", size, off, n, obj.calls, wantCalls)
	}
	c := obj.calls[0]
	if first > 0 {
		// The header and the segments are fetched concurrently, in any order.
		h := obj.calls[0]
		c = obj.calls[1]
		if h[0] != 0 {
			h, c = c, h
		}
		if h != [2]int64{0, HeaderSize} {
			t.Fatalf("size %d [%d,+%d): header request %v", size, off, n, h)
		}
	}
	start := f.cipherStart(first)
	if first == 0 {
		start = 0
	}
	end := f.cipherStart(last) + f.plainLen(last, size) + TagSize
	if c[0] != start || (c[1] != end-start && !(c[1] == -1 && last == f.numSegments(size)-1)) {
		t.Fatalf("size %d [%d,+%d): request %v, want [%d,%d)", size, off, n, c, start, end)
	}
}

func TestStdRanges(t *testing.T) {
	dk := mustKey(t)
	const size = 5*SegmentSize + 1234
	pt := randBytes(size)
	ct := encrypt(t, std, dk, nil, pt)
	for range 300 {
		off := mrand.Int64N(size + 1)
		n := mrand.Int64N(size-off+1) - 1
		if mrand.IntN(4) == 0 {
			n = min(size-off, mrand.Int64N(3)) // tiny ranges, including empty
		}
		obj := &memObject{data: ct}
		r, err := NewRangeReader(context.Background(), obj.open, size, dk, nil, off, n)
		if err != nil {
			t.Fatal(err)
		}
		want := pt[off:]
		if n >= 0 {
			want = pt[off : off+n]
		}
		if err := iotest.TestReader(r, want); err != nil {
			t.Fatalf("[%d,+%d): %v", off, n, err)
		}
		r.Close()
		checkRequests(t, std, obj, size, off, int64(len(want)))
	}
}

func TestWriteTo(t *testing.T) {
	dk := mustKey(t)
	const size = 3*SegmentSize + 99
	pt := randBytes(size)
	obj := &memObject{data: encrypt(t, std, dk, nil, pt)}
	r, err := NewRangeReader(context.Background(), obj.open, size, dk, nil, 100, size-200)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(io.WriterTo); !ok {
		t.Fatal("range reader does not implement io.WriterTo")
	}
	var out bytes.Buffer
	if n, err := io.Copy(&out, r); err != nil || n != size-200 || !bytes.Equal(out.Bytes(), pt[100:size-100]) {
		t.Fatalf("io.Copy = %d, %v", n, err)
	}

	// A destination that fails part way loses nothing: WriteTo and Read
	// carry on from where it stopped.
	r2, err := NewRangeReader(context.Background(), obj.open, size, dk, nil, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	var got []byte
	for i := 0; ; i++ {
		if i%2 == 1 {
			b := make([]byte, 1000)
			k, err := r2.Read(b)
			got = append(got, b[:k]...)
			if err == io.EOF {
				break
			}
			continue
		}
		cw := &collectAfter{n: 50000 + i}
		_, err := r2.(io.WriterTo).WriteTo(cw)
		got = append(got, cw.buf...)
		if err == nil {
			break
		}
		if err != errStop {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, pt) {
		t.Fatalf("interrupted WriteTo returned %d bytes, want %d", len(got), len(pt))
	}
}

// collectAfter keeps n bytes, then fails.
type collectAfter struct {
	n   int
	buf []byte
}

func (w *collectAfter) Write(p []byte) (int, error) {
	k := min(len(p), w.n)
	w.buf = append(w.buf, p[:k]...)
	w.n -= k
	if k < len(p) {
		return k, errStop
	}
	return k, nil
}

// TestTamper flips every bit position class of every byte and checks that a
// read either fails with ErrCorrupt having returned only a correct prefix,
// or — when the flipped byte lies outside what the range needs — succeeds.
func TestTamper(t *testing.T) {
	dk := mustKey(t)
	for _, f := range tinyFormats {
		for _, size := range []int64{0, 1, f.firstPt(), f.firstPt() + 1, f.firstPt() + f.ptSeg(), f.firstPt() + 2*f.ptSeg() + 3} {
			pt := randBytes(size)
			ct := encrypt(t, f, dk, nil, pt)
			for pos := range ct {
				bad := bytes.Clone(ct)
				bad[pos] ^= 1 << (pos % 8)
				for _, rg := range [][2]int64{{0, -1}, {size / 2, -1}, {0, size / 2}, {size, 0}} {
					off, n := rg[0], rg[1]
					want := pt[off:]
					if n >= 0 {
						want = pt[off : off+n]
					}
					needed := pos < HeaderSize
					if len(want) > 0 || size == 0 {
						first, last := f.segmentOf(off), f.segmentOf(max(off+int64(len(want))-1, 0))
						needed = needed || (int64(pos) >= f.cipherStart(first) && int64(pos) < f.cipherStart(last)+f.plainLen(last, size)+TagSize)
					} else {
						needed = false
					}
					got, err := readRangePartial(f, &memObject{data: bad}, size, dk, nil, off, n)
					if !needed {
						if err != nil || !bytes.Equal(got, want) {
							t.Fatalf("seg %d size %d flip %d range %v: unneeded byte changed result: %v", f.seg, size, pos, rg, err)
						}
						continue
					}
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("seg %d size %d flip %d range %v: err = %v, want ErrCorrupt", f.seg, size, pos, rg, err)
					}
					if !bytes.HasPrefix(want, got) {
						t.Fatalf("seg %d size %d flip %d range %v: returned wrong bytes before the error", f.seg, size, pos, rg)
					}
				}
			}
		}
	}
}

// readRangePartial is readRange but also returns the bytes read before an
// error.
func readRangePartial(f format, obj *memObject, plainSize int64, dk *DataKey, ad []byte, off, n int64) ([]byte, error) {
	got, err := readRangePartial1(f, obj, plainSize, dk, ad, off, n)
	if obj.unclosed != 0 {
		return got, fmt.Errorf("%d readers left open (after %v)", obj.unclosed, err)
	}
	return got, err
}

func readRangePartial1(f format, obj *memObject, plainSize int64, dk *DataKey, ad []byte, off, n int64) ([]byte, error) {
	r, err := newRangeReader(context.Background(), f, obj.open, plainSize, dk, ad, off, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var got []byte
	buf := make([]byte, 7)
	for {
		k, err := r.Read(buf)
		got = append(got, buf[:k]...)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			// Errors are sticky.
			if _, err2 := r.Read(buf); err2 != err {
				return got, fmt.Errorf("second Read returned %v after %v", err2, err)
			}
			return got, err
		}
	}
}

func TestTruncateAndExtend(t *testing.T) {
	dk := mustKey(t)
	for _, f := range tinyFormats {
		for _, size := range []int64{0, 1, f.firstPt(), f.firstPt() + 1, f.firstPt() + f.ptSeg(), f.firstPt() + 2*f.ptSeg() + 3} {
			pt := randBytes(size)
			ct := encrypt(t, f, dk, nil, pt)
			for cut := range len(ct) {
				got, err := readRangePartial(f, &memObject{data: ct[:cut]}, size, dk, nil, 0, -1)
				if !errors.Is(err, ErrCorrupt) || !bytes.HasPrefix(pt, got) {
					t.Fatalf("seg %d size %d cut at %d: %v", f.seg, size, cut, err)
				}
			}
			for _, extra := range [][]byte{{0}, ct[len(ct)-TagSize:], ct[HeaderSize:]} {
				long := append(bytes.Clone(ct), extra...)
				if _, err := readRangePartial(f, &memObject{data: long}, size, dk, nil, 0, -1); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("seg %d size %d extended by %d: %v", f.seg, size, len(extra), err)
				}
				// The tail alone, read from a later segment.
				if size > f.firstPt() {
					if _, err := readRangePartial(f, &memObject{data: long}, size, dk, nil, size-1, 1); !errors.Is(err, ErrCorrupt) {
						t.Fatalf("seg %d size %d extended, last byte: %v", f.seg, size, err)
					}
				}
			}
			// A store returning more than a bounded request asked for.
			if size > f.firstPt()+1 {
				if _, err := readRangePartial(f, &memObject{data: ct, extra: 1}, size, dk, nil, 0, 1); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("seg %d size %d over-long response: %v", f.seg, size, err)
				}
			}
		}
	}
}

// TestTruncationAtSegmentBoundary is the classic attack on segmented
// encryption: drop whole trailing segments and claim the shorter size.
// The last-segment flag in the nonce defeats it.
func TestTruncationAtSegmentBoundary(t *testing.T) {
	dk := mustKey(t)
	for _, f := range append(tinyFormats, std) {
		size := f.firstPt() + 3*f.ptSeg() + 5
		pt := randBytes(size)
		ct := encrypt(t, f, dk, nil, pt)
		for k := int64(1); k < f.numSegments(size); k++ {
			cut := f.cipherStart(k)
			claimed := f.plainStart(k)
			if f.ciphertextSize(claimed) != cut {
				t.Fatalf("layout: claimed size %d does not map to cut %d", claimed, cut)
			}
			obj := &memObject{data: ct[:cut]}
			_, err := readRangePartial(f, obj, claimed, dk, nil, 0, -1)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("seg %d: truncated to %d segments with matching size: err = %v", f.seg, k, err)
			}
			// Also the last byte alone.
			_, err = readRangePartial(f, obj, claimed, dk, nil, claimed-1, 1)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("seg %d: truncated to %d segments, last byte: err = %v", f.seg, k, err)
			}
			// And Tink's reader agrees.
			if _, err := tinkDecrypt(f, dk, nil, ct[:cut]); err == nil {
				t.Fatalf("seg %d: Tink accepted truncation at segment %d", f.seg, k)
			}
		}
		// A size claim larger than the truth fails when it reaches the end.
		if _, err := readRangePartial(f, &memObject{data: ct}, size+1, dk, nil, 0, -1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("seg %d: oversize claim: %v", f.seg, err)
		}
		if _, err := readRangePartial(f, &memObject{data: ct}, size-1, dk, nil, 0, -1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("seg %d: undersize claim: %v", f.seg, err)
		}
	}
}

func TestSegmentReorder(t *testing.T) {
	dk := mustKey(t)
	f := format{seg: 64}
	size := f.firstPt() + 3*f.ptSeg()
	ct := encrypt(t, f, dk, nil, randBytes(size))
	bad := bytes.Clone(ct)
	s1, s2 := ct[f.cipherStart(1):f.cipherStart(2)], ct[f.cipherStart(2):f.cipherStart(3)]
	copy(bad[f.cipherStart(1):], s2)
	copy(bad[f.cipherStart(2):], s1)
	if _, err := readRangePartial(f, &memObject{data: bad}, size, dk, nil, 0, -1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped segments: %v", err)
	}
	// A segment from another object encrypted with the same key.
	other := encrypt(t, f, dk, nil, randBytes(size))
	bad = bytes.Clone(ct)
	copy(bad[f.cipherStart(1):], other[f.cipherStart(1):f.cipherStart(2)])
	if _, err := readRangePartial(f, &memObject{data: bad}, size, dk, nil, 0, -1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("spliced segment: %v", err)
	}
}

func TestWrongKeyOrAD(t *testing.T) {
	dk := mustKey(t)
	pt := randBytes(3 * SegmentSize)
	ct := encrypt(t, std, dk, []byte("a"), pt)
	obj := &memObject{data: ct}
	if _, err := readRange(std, obj, int64(len(pt)), dk, []byte("b"), 0, -1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong ad: %v", err)
	}
	if _, err := readRange(std, obj, int64(len(pt)), dk, nil, 0, -1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("missing ad: %v", err)
	}
	if _, err := readRange(std, obj, int64(len(pt)), mustKey(t), []byte("a"), 2*SegmentSize, 10); !errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong key: %v", err)
	}
	var ce *CorruptError
	_, err := readRange(std, obj, int64(len(pt)), dk, []byte("b"), 0, -1)
	if !errors.As(err, &ce) || ce.Segment != 0 || ce.Offset != HeaderSize || !strings.HasPrefix(err.Error(), "envelope: ") {
		t.Errorf("CorruptError = %#v (%v)", ce, err)
	}
}

func TestKeyWrapping(t *testing.T) {
	ctx := context.Background()
	kek1, _ := localsecrets.NewRandomKey()
	kek2, _ := localsecrets.NewRandomKey()
	k1, k2 := localsecrets.NewKeeper(kek1), localsecrets.NewKeeper(kek2)
	defer k2.Close()

	dk := mustKey(t)
	pt := randBytes(100000)
	ct := encrypt(t, std, dk, nil, pt)
	wrapped, err := WrapKey(ctx, k1, dk)
	if err != nil {
		t.Fatal(err)
	}
	dk.Destroy()
	if bytes.Contains(wrapped, dk.s.b[:]) {
		t.Fatal("wrapped key contains the key")
	}
	rewrapped, err := Rewrap(ctx, k1, k2, wrapped)
	if err != nil {
		t.Fatal(err)
	}
	k1.Close() // the old keeper is no longer needed
	if _, err := WrapKey(ctx, k1, mustKey(t)); gcerrors.Code(err) != gcerrors.FailedPrecondition {
		t.Errorf("WrapKey with a closed keeper: %v (code %v); the keeper's error code must survive", err, gcerrors.Code(err))
	}
	if _, err := UnwrapKey(ctx, k2, wrapped); err == nil {
		t.Fatal("new keeper unwrapped a key wrapped by the old one")
	}
	dk2, err := UnwrapKey(ctx, k2, rewrapped)
	if err != nil {
		t.Fatal(err)
	}
	defer dk2.Destroy()
	if got, err := readRange(std, &memObject{data: ct}, int64(len(pt)), dk2, nil, 0, -1); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("read after rewrap: %v", err)
	}

	// A wrapped value of the wrong length.
	short, _ := k2.Encrypt(ctx, []byte("short"))
	if _, err := UnwrapKey(ctx, k2, short); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short key: %v", err)
	}
	if _, err := WrapKey(ctx, nil, dk2); err == nil {
		t.Error("nil keeper accepted")
	}
	if _, err := Rewrap(ctx, nil, k2, rewrapped); err == nil {
		t.Error("nil from keeper accepted")
	}
}

func TestDataKeyRedaction(t *testing.T) {
	dk := mustKey(t)
	dk.s.b = [KeySize]byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "key", dk)
	outs := []string{logged.String()}
	for _, v := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		outs = append(outs, fmt.Sprintf(v, dk), fmt.Sprintf(v, *dk), fmt.Sprintf(v, struct{ K *DataKey }{dk}))
	}
	for _, s := range outs {
		if strings.Contains(strings.ToLower(s), "dead") || strings.Contains(s, "222 173") || strings.Contains(s, "de ad") {
			t.Errorf("key revealed: %q", s)
		}
	}
	dk.Destroy()
	dk.Destroy()
	var nilKey *DataKey
	nilKey.Destroy()
	if dk.s.b != [KeySize]byte{} {
		t.Error("Destroy left key bytes")
	}
	if _, err := NewWriter(io.Discard, dk, nil); err == nil {
		t.Error("NewWriter accepted a destroyed key")
	}
	if _, err := NewWriter(io.Discard, &DataKey{}, nil); err == nil {
		t.Error("NewWriter accepted a zero DataKey")
	}
	if _, err := NewRangeReader(context.Background(), (&memObject{}).open, 0, dk, nil, 0, -1); err == nil {
		t.Error("NewRangeReader accepted a destroyed key")
	}
}

func TestAdversarialReaders(t *testing.T) {
	dk := mustKey(t)
	const size = 4*SegmentSize + 17
	pt := randBytes(size)
	ct := encrypt(t, std, dk, nil, pt)
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"OneByte": iotest.OneByteReader,
		"Half":    iotest.HalfReader,
		"DataErr": iotest.DataErrReader,
	} {
		for _, rg := range [][2]int64{{0, -1}, {SegmentSize, 2 * SegmentSize}, {size - 1, 1}} {
			obj := &memObject{data: ct, wrap: wrap}
			got, err := readRange(std, obj, size, dk, nil, rg[0], rg[1])
			want := pt[rg[0]:]
			if rg[1] >= 0 {
				want = want[:rg[1]]
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s %v: %d bytes, %v", name, rg, len(got), err)
			}
		}
	}
	// TimeoutReader fails its second Read: the error surfaces unchanged (not
	// as corruption), sticks, and nothing wrong was returned before it.
	for _, rg := range [][2]int64{{0, -1}, {SegmentSize, -1}} {
		obj := &memObject{data: ct, wrap: iotest.TimeoutReader}
		got, err := readRangePartial(std, obj, size, dk, nil, rg[0], rg[1])
		if !errors.Is(err, iotest.ErrTimeout) || errors.Is(err, ErrCorrupt) || !bytes.HasPrefix(pt[rg[0]:], got) {
			t.Errorf("Timeout %v: %v", rg, err)
		}
	}
	// A failure while reading the header, from either request.
	for _, off := range []int64{0, 2 * SegmentSize} {
		obj := &memObject{data: ct, wrap: func(r io.Reader) io.Reader { return iotest.TimeoutReader(iotest.OneByteReader(r)) }}
		if _, err := readRange(std, obj, size, dk, nil, off, 10); !errors.Is(err, iotest.ErrTimeout) || errors.Is(err, ErrCorrupt) {
			t.Errorf("header read failure at %d: %v", off, err)
		}
	}
	// A failing opener.
	errGone := errors.New("gone")
	fail := func(context.Context, int64, int64) (io.ReadCloser, error) { return nil, errGone }
	if _, err := NewRangeReader(context.Background(), fail, size, dk, nil, 0, -1); !errors.Is(err, errGone) {
		t.Errorf("opener error: %v", err)
	}
	if _, err := NewRangeReader(context.Background(), fail, size, dk, nil, SegmentSize*2, -1); !errors.Is(err, errGone) {
		t.Errorf("opener error (header): %v", err)
	}
}

func TestRangeArguments(t *testing.T) {
	dk := mustKey(t)
	obj := &memObject{data: encrypt(t, std, dk, nil, []byte("hello"))}
	ctx := context.Background()
	for _, c := range []struct{ size, off, n int64 }{{5, -1, 1}, {5, 6, -1}, {-1, 0, 0}, {MaxPlaintextSize + 1, 0, 1}} {
		if _, err := NewRangeReader(ctx, obj.open, c.size, dk, nil, c.off, c.n); err == nil {
			t.Errorf("size %d [%d,+%d) accepted", c.size, c.off, c.n)
		}
	}
	if _, err := NewRangeReader(ctx, nil, 5, dk, nil, 0, 1); err == nil {
		t.Error("nil opener accepted")
	}
	r, err := NewRangeReader(ctx, obj.open, 5, dk, nil, 1, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "ello" {
		t.Errorf("clamped range = %q, %v", b, err)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Read(make([]byte, 1)); err == nil || err == io.EOF {
		t.Errorf("Read after Close: %v", err)
	}
}

// FuzzRangeReader encrypts size bytes with tiny segments, optionally flips
// one ciphertext bit, optionally cuts bytes off the end of the object or
// appends some (delta), and reads [off, off+n). The result must be the right
// bytes, unless a byte the range needs was damaged: then an error (ErrCorrupt
// for flips and extensions) after a correct prefix.
func FuzzRangeReader(f *testing.F) {
	f.Add(uint8(1), uint16(100), uint16(10), int16(30), int32(-1), uint8(0), int16(0))
	f.Add(uint8(0), uint16(0), uint16(0), int16(-1), int32(0), uint8(0), int16(0))
	f.Add(uint8(2), uint16(300), uint16(299), int16(1), int32(5), uint8(7), int16(-16))
	f.Fuzz(func(t *testing.T, fmtIdx uint8, size, off uint16, n int16, flip int32, bit uint8, delta int16) {
		fm := tinyFormats[int(fmtIdx)%len(tinyFormats)]
		size %= 1024
		if off > size {
			off %= size + 1
		}
		dk, err := NewDataKey()
		if err != nil {
			t.Fatal(err)
		}
		pt := make([]byte, size)
		for i := range pt {
			pt[i] = byte(i * 7)
		}
		ct := encrypt(t, fm, dk, []byte("ad"), pt)
		want := pt[off:]
		if n >= 0 && int(n) < len(want) {
			want = want[:n]
		}
		// The ciphertext the range needs: header and [start, end).
		io := len(want) > 0 || size == 0
		first := fm.segmentOf(int64(off))
		last := fm.segmentOf(max(int64(off)+int64(len(want))-1, 0))
		start, end := fm.cipherStart(first), fm.cipherStart(last)+fm.plainLen(last, int64(size))+TagSize
		final := last == fm.numSegments(int64(size))-1

		corrupt, broken := false, false // must fail with ErrCorrupt; must fail somehow
		if flip >= 0 && int(flip) < len(ct) {
			ct[flip] ^= 1 << (bit % 8)
			corrupt = io && (int64(flip) < HeaderSize || (int64(flip) >= start && int64(flip) < end))
		}
		switch {
		case delta < 0:
			cut := max(len(ct)+int(delta)%1024, 0)
			ct = ct[:cut]
			broken = io && int64(cut) < end
			if corrupt && int(flip) >= cut {
				corrupt = false
			}
		case delta > 0:
			ct = append(ct, make([]byte, delta%1024)...)
			corrupt = corrupt || (io && final)
		}
		got, err := readRangePartial(fm, &memObject{data: ct}, int64(size), dk, []byte("ad"), int64(off), int64(n))
		switch {
		case broken: // the opener may refuse a range past the end first
			if err == nil || !bytes.HasPrefix(want, got) {
				t.Fatalf("truncated: got %d bytes, err %v", len(got), err)
			}
		case corrupt:
			if !errors.Is(err, ErrCorrupt) || !bytes.HasPrefix(want, got) {
				t.Fatalf("damaged: got %d bytes, err %v", len(got), err)
			}
		default:
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes (want %d), err %v", len(got), len(want), err)
			}
		}
	})
}

func benchPlain(b *testing.B, n int) []byte {
	b.Helper()
	return randBytes(int64(n))
}

// BenchmarkWriter encrypts 16 MiB per op through io.Copy-sized writes.
func BenchmarkWriter(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 20} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			dk := mustKey(b)
			pt := benchPlain(b, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				w, err := NewWriter(io.Discard, dk, []byte("ad"))
				if err != nil {
					b.Fatal(err)
				}
				if err := writeChunks(w, pt, 32<<10); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("size=16777216/ReadFrom", func(b *testing.B) {
		dk := mustKey(b)
		pt := benchPlain(b, 16<<20)
		src := bytes.NewReader(pt)
		b.SetBytes(int64(len(pt)))
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(pt)
			w, err := NewWriter(io.Discard, dk, []byte("ad"))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(w, struct{ io.Reader }{src}); err != nil { // hide WriterTo
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRangeReader(b *testing.B) {
	dk := mustKey(b)
	const size = 16 << 20
	pt := benchPlain(b, size)
	ct := encrypt(b, std, dk, []byte("ad"), pt)
	for _, c := range []struct {
		name   string
		off, n int64
	}{
		{"full", 0, -1},
		{"full/WriteTo", 0, -1},
		{"range=1MiB", 5<<20 + 1, 1 << 20},
		{"range=100B", 9<<20 + 3, 100},
	} {
		b.Run(c.name, func(b *testing.B) {
			obj := &memObject{data: ct}
			n := c.n
			if n < 0 {
				n = size - c.off
			}
			b.SetBytes(n)
			b.ReportAllocs()
			buf := make([]byte, 32<<10)
			for b.Loop() {
				obj.calls = obj.calls[:0]
				r, err := NewRangeReader(context.Background(), obj.open, size, dk, []byte("ad"), c.off, c.n)
				if err != nil {
					b.Fatal(err)
				}
				var src io.Reader = struct{ io.Reader }{r} // force the Read path
				if strings.HasSuffix(c.name, "WriteTo") {
					src = r
				}
				if _, err := io.CopyBuffer(io.Discard, src, buf); err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
		})
	}
}

// BenchmarkTinkReader is the baseline: Tink's sequential decrypting reader.
func BenchmarkTinkReader(b *testing.B) {
	dk := mustKey(b)
	const size = 16 << 20
	ct := encrypt(b, std, dk, []byte("ad"), benchPlain(b, size))
	a, err := subtle.NewAESGCMHKDF(dk.s.b[:], "SHA256", KeySize, SegmentSize, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	buf := make([]byte, 32<<10)
	for b.Loop() {
		r, err := a.NewDecryptingReader(bytes.NewReader(ct), []byte("ad"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// chunkings feed a writer in different ways: plain writes of fixed sizes,
// and io.Copy through ReadFrom with adversarial sources.
var chunkings = []struct {
	name  string
	write func(w io.Writer, pt []byte) error
}{
	{"whole", func(w io.Writer, pt []byte) error { _, err := w.Write(pt); return err }},
	{"bytes", func(w io.Writer, pt []byte) error { return writeChunks(w, pt, 1) }},
	{"7", func(w io.Writer, pt []byte) error { return writeChunks(w, pt, 7) }},
	{"32KiB", func(w io.Writer, pt []byte) error { return writeChunks(w, pt, 32<<10) }},
	{"100KiB", func(w io.Writer, pt []byte) error { return writeChunks(w, pt, 100<<10) }},
	{"ReadFrom", func(w io.Writer, pt []byte) error { return readFrom(w, bytes.NewBuffer(pt)) }},
	{"ReadFrom/OneByte", func(w io.Writer, pt []byte) error { return readFrom(w, iotest.OneByteReader(bytes.NewReader(pt))) }},
	{"ReadFrom/Half", func(w io.Writer, pt []byte) error { return readFrom(w, iotest.HalfReader(bytes.NewReader(pt))) }},
	{"ReadFrom/DataErr", func(w io.Writer, pt []byte) error { return readFrom(w, iotest.DataErrReader(bytes.NewReader(pt))) }},
	{"ReadFrom/Timeout", func(w io.Writer, pt []byte) error {
		// The source fails once; the writer stays usable and the copy resumes.
		src := iotest.TimeoutReader(bytes.NewReader(pt))
		err := readFrom(w, src)
		if errors.Is(err, iotest.ErrTimeout) {
			err = readFrom(w, src)
		}
		return err
	}},
}

func writeChunks(w io.Writer, pt []byte, k int) error {
	for len(pt) > 0 {
		c := min(k, len(pt))
		if n, err := w.Write(pt[:c]); err != nil || n != c {
			return fmt.Errorf("Write = %d, %v", n, err)
		}
		pt = pt[c:]
	}
	return nil
}

func readFrom(w io.Writer, r io.Reader) error {
	_, err := w.(io.ReaderFrom).ReadFrom(r)
	return err
}

// TestWriterMatchesTink checks that NewWriter's output is byte for byte
// Tink's, given the same randomness, whatever the write pattern, and that
// Tink's reader decrypts it.
func TestWriterMatchesTink(t *testing.T) {
	dk := mustKey(t)
	ad := []byte("blobs/x")
	for _, f := range append(tinyFormats, std) {
		sizes := interesting(f)
		if f != std {
			sizes = nil
			for n := range f.firstPt() + 3*f.ptSeg() + 2 {
				sizes = append(sizes, n)
			}
		}
		for _, n := range sizes {
			pt := randBytes(n)
			cryptotest.SetGlobalRandom(t, uint64(n))
			want := tinkEncrypt(t, f, dk, ad, pt)
			for _, c := range chunkings {
				if f != std && n > 150 && len(c.name) > 8 {
					continue // the slow ones, on small sizes only
				}
				cryptotest.SetGlobalRandom(t, uint64(n))
				var buf bytes.Buffer
				w, err := newWriter(f, &buf, dk, ad, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.write(w, pt); err != nil {
					t.Fatalf("seg %d n %d %s: %v", f.seg, n, c.name, err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf.Bytes(), want) {
					t.Fatalf("seg %d n %d %s: output differs from Tink's (%d vs %d bytes)", f.seg, n, c.name, buf.Len(), len(want))
				}
			}
			got, err := tinkDecrypt(f, dk, ad, want)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("seg %d n %d: Tink reader: %v", f.seg, n, err)
			}
		}
	}
}

// failWriter fails its nth Write (counting from 1).
type failWriter struct {
	n, calls int
	buf      bytes.Buffer
}

var errDisk = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.calls == w.n {
		return 0, errDisk
	}
	return w.buf.Write(p)
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestWriterErrors(t *testing.T) {
	dk := mustKey(t)
	pt := randBytes(3 * SegmentSize)
	for fail := 1; fail <= 4; fail++ {
		fw := &failWriter{n: fail}
		w, err := NewWriter(fw, dk, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := w.Write(pt)
		cerr := w.Close()
		if fail <= 3 && !errors.Is(werr, errDisk) {
			t.Errorf("fail %d: Write error %v", fail, werr)
		}
		if !errors.Is(cerr, errDisk) {
			t.Errorf("fail %d: Close error %v", fail, cerr)
		}
		if _, err := w.Write([]byte{1}); !errors.Is(err, errDisk) {
			t.Errorf("fail %d: Write after failure: %v", fail, err)
		}
		if err := w.Close(); !errors.Is(err, cerr) {
			t.Errorf("fail %d: second Close %v, first %v", fail, err, cerr)
		}
	}
	// Through ReadFrom.
	fw := &failWriter{n: 2}
	rw, _ := NewWriter(fw, dk, nil)
	if _, err := io.Copy(rw, iotest.HalfReader(bytes.NewReader(pt))); !errors.Is(err, errDisk) {
		t.Errorf("ReadFrom: %v", err)
	}
	if err := rw.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close after ReadFrom failure: %v", err)
	}
	w, _ := NewWriter(shortWriter{}, dk, nil)
	if err := w.Close(); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("short write: %v", err)
	}
	w, _ = NewWriter(io.Discard, dk, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := w.Write([]byte{1}); err == nil {
		t.Error("Write after Close succeeded")
	}
	if _, err := w.(io.ReaderFrom).ReadFrom(bytes.NewReader([]byte{1})); err == nil {
		t.Error("ReadFrom after Close succeeded")
	}
	if _, err := NewWriter(nil, dk, nil); err == nil {
		t.Error("nil writer accepted")
	}
}

func TestWriterSegmentLimit(t *testing.T) {
	dk := mustKey(t)
	w, err := newWriter(format{seg: 64}, io.Discard, dk, nil, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w.seg, w.base = maxSegments-1, 0 // as if 2³²−1 segments had been written
	if _, err := w.Write(make([]byte, w.room())); err != nil {
		t.Fatalf("filling the last allowed segment: %v", err)
	}
	if _, err := w.Write([]byte{1}); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("writing past the limit: %v", err)
	}
}

func TestSteadyStateAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful under -race or -cover")
	}
	dk := mustKey(t)
	// Each run covers at least two segments (AllocsPerRun rounds down).
	chunk := randBytes(3 * SegmentSize)
	w, err := NewWriter(io.Discard, dk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() { w.Write(chunk) }); a != 0 {
		t.Errorf("Write: %v allocs per 192 KiB", a)
	}
	src := bytes.NewReader(chunk)
	rf := w.(io.ReaderFrom)
	if a := testing.AllocsPerRun(20, func() { src.Reset(chunk); rf.ReadFrom(src) }); a != 0 {
		t.Errorf("ReadFrom: %v allocs per 192 KiB", a)
	}
	w.Close()

	const size = 64 << 20
	obj := &memObject{data: encrypt(t, std, dk, nil, randBytes(size))}
	r, err := NewRangeReader(context.Background(), obj.open, size, dk, nil, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 3*SegmentSize)
	if a := testing.AllocsPerRun(20, func() { io.ReadFull(r, buf) }); a != 0 {
		t.Errorf("Read: %v allocs per 192 KiB", a)
	}
	stop := &stopAfter{}
	wt := r.(io.WriterTo)
	if a := testing.AllocsPerRun(20, func() { stop.n = 3 * SegmentSize; wt.WriteTo(stop) }); a != 0 {
		t.Errorf("WriteTo: %v allocs per 192 KiB", a)
	}
}

// BenchmarkTinkWriter is the baseline for BenchmarkWriter: Tink's own
// streaming writer, fed the same way.
func BenchmarkTinkWriter(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 20} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			dk := mustKey(b)
			pt := benchPlain(b, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				a, err := subtle.NewAESGCMHKDF(dk.s.b[:], "SHA256", KeySize, SegmentSize, 0)
				if err != nil {
					b.Fatal(err)
				}
				w, err := a.NewEncryptingWriter(io.Discard, []byte("ad"))
				if err != nil {
					b.Fatal(err)
				}
				if err := writeChunks(w, pt, 32<<10); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestConcurrentHeaderFetch checks that a range starting past the first
// segment fetches the header and the segments at the same time, and that
// every reader opened is closed whichever fails.
func TestConcurrentHeaderFetch(t *testing.T) {
	dk := mustKey(t)
	const size = 3 * SegmentSize
	pt := randBytes(size)
	obj := &memObject{data: encrypt(t, std, dk, nil, pt)}
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	go func() { arrived.Wait(); close(both) }()
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		arrived.Done()
		select {
		case <-both:
		case <-time.After(10 * time.Second):
			return nil, errors.New("requests were not concurrent")
		}
		return obj.open(ctx, off, n)
	}
	r, err := NewRangeReader(context.Background(), open, size, dk, nil, 2*SegmentSize, 10)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, pt[2*SegmentSize:2*SegmentSize+10]) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}

	// Header fails, segments fail, or both.
	errHdr, errSeg := errors.New("header failed"), errors.New("segments failed")
	for _, c := range []struct {
		failHdr, failSeg bool
		want             error
	}{{true, false, errHdr}, {false, true, errSeg}, {true, true, errSeg}} {
		obj.calls, obj.unclosed = nil, 0
		open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			if (off == 0 && c.failHdr) || (off > 0 && c.failSeg) {
				if off == 0 {
					return nil, errHdr
				}
				return nil, errSeg
			}
			return obj.open(ctx, off, n)
		}
		if _, err := NewRangeReader(context.Background(), open, size, dk, nil, SegmentSize, -1); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v", c, err)
		}
		if obj.unclosed != 0 {
			t.Errorf("%+v: %d readers left open", c, obj.unclosed)
		}
	}
	// A corrupt header with good segments.
	bad := &memObject{data: bytes.Clone(obj.data)}
	bad.data[0] = 41
	_, err = readRange(std, bad, size, dk, nil, SegmentSize, 5)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Segment != -1 || err.Error() != "envelope: ciphertext corrupt: header: header length byte is 41, want 40" {
		t.Errorf("bad header length byte: %v", err)
	}
}

// stopAfter accepts n bytes, then fails.
type stopAfter struct{ n int }

var errStop = errors.New("stop")

func (w *stopAfter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errStop
	}
	w.n -= len(p)
	return len(p), nil
}

var update = flag.Bool("update", false, "rewrite the known-answer vectors in testdata")

// TestKnownAnswer pins the format: a fixed data key, salt, nonce prefix and
// plaintext must give exactly the stored ciphertext, which both this
// package's reader and Tink's decrypt. A change to the writer that alters a
// single byte of the output fails here.
func TestKnownAnswer(t *testing.T) {
	dk := &DataKey{s: &keyState{live: true}}
	var fixed [KeySize + noncePrefixSize]byte // salt || nonce prefix
	for i := range dk.s.b {
		dk.s.b[i] = byte(i)
	}
	for i := range fixed {
		fixed[i] = byte(0xa0 + i)
	}
	ad := []byte("blobs/sha256/known-answer")
	for _, c := range []struct {
		file string
		size int64
	}{
		{"empty.bin", 0},
		{"one-byte.bin", 1},
		{"three-segments.bin", std.firstPt() + std.ptSeg() + 10},
	} {
		pt := make([]byte, c.size)
		for i := range pt {
			pt[i] = byte(i*31 + 7)
		}
		var buf bytes.Buffer
		w, err := newWriter(std, &buf, dk, ad, bytes.NewReader(fixed[:]))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(pt); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "known-answer", c.file)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: writer output differs from the known answer", c.file)
		}
		if got, err := tinkDecrypt(std, dk, ad, want); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s: Tink's reader: %v", c.file, err)
		}
		if got, err := readRange(std, &memObject{data: want}, c.size, dk, ad, 0, -1); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s: NewRangeReader: %v", c.file, err)
		}
		if !bytes.Equal(want[1:HeaderSize], fixed[:]) || want[0] != HeaderSize {
			t.Errorf("%s: header is not 0x28 || salt || nonce prefix", c.file)
		}
	}
}
