package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/cryptotest"
	"testing/iotest"
)

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
