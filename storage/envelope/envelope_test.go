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
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		fetches := len(want) > 0 || size == 0
		first := fm.segmentOf(int64(off))
		last := fm.segmentOf(max(int64(off)+int64(len(want))-1, 0))
		start, end := fm.cipherStart(first), fm.cipherStart(last)+fm.plainLen(last, int64(size))+TagSize
		final := last == fm.numSegments(int64(size))-1

		corrupt, broken := false, false // must fail with ErrCorrupt; must fail somehow
		if flip >= 0 && int(flip) < len(ct) {
			ct[flip] ^= 1 << (bit % 8)
			corrupt = fetches && (int64(flip) < HeaderSize || (int64(flip) >= start && int64(flip) < end))
		}
		switch {
		case delta < 0:
			cut := max(len(ct)+int(delta)%1024, 0)
			ct = ct[:cut]
			broken = fetches && int64(cut) < end
			if corrupt && int(flip) >= cut {
				corrupt = false
			}
		case delta > 0:
			ct = append(ct, make([]byte, delta%1024)...)
			corrupt = corrupt || (fetches && final)
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
