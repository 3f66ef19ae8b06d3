package envelope

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

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
