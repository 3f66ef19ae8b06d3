package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/envelope"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/opencontainers/go-digest"
	"gocloud.dev/blob"
	"gocloud.dev/secrets"
	"gocloud.dev/secrets/localsecrets"
)

// BlobHarness supplies what the blob suite needs from a backend.
type BlobHarness struct {
	// NewBucket returns an empty bucket (or an empty, isolated prefix of
	// one) for a single test, and registers its own clean-up (t.Cleanup):
	// the suite does not close it. Required.
	NewBucket func(t *testing.T) *blob.Bucket
	// NewMetadata returns an empty metadata backend for a single test. The
	// suite closes it. Default: memmeta.New.
	NewMetadata func(t *testing.T) driver.Metadata
	// Sync is passed to storage.Options.Sync (optional).
	Sync func(ctx context.Context, key string) error
}

// RunBlobTests runs the storage.Store conformance suite against a bucket
// and metadata backend: round trips at awkward sizes, ranges, digest and
// size verification, deduplication, chunked and resumable uploads shared
// between stores, concurrency, corruption detection, key rotation, and the
// rule that nothing half-written ever becomes visible. Every test runs with
// encryption on and off.
func RunBlobTests(t *testing.T, h BlobHarness) {
	if h.NewMetadata == nil {
		h.NewMetadata = func(*testing.T) driver.Metadata { return memmeta.New() }
	}
	for _, enc := range []bool{true, false} {
		name := "encrypted"
		if !enc {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			for _, tc := range blobTests {
				t.Run(tc.name, func(t *testing.T) {
					tc.fn(t, newFixture(t, h, enc))
				})
			}
		})
	}
	t.Run("encrypted/FaultyBucket", func(t *testing.T) { testFaultyBucket(t, h, true) })
	t.Run("plain/FaultyBucket", func(t *testing.T) { testFaultyBucket(t, h, false) })
	t.Run("encrypted/KeyRotation", func(t *testing.T) { testKeyRotation(t, newFixture(t, h, true)) })
	t.Run("encrypted/Corruption", func(t *testing.T) { testCorruption(t, newFixture(t, h, true)) })
	t.Run("encrypted/SwappedObjects", func(t *testing.T) { testSwappedObjects(t, newFixture(t, h, true)) })
}

// fixture is one test's bucket, metadata and store.
type fixture struct {
	h      BlobHarness
	bucket *blob.Bucket
	meta   driver.Metadata
	opts   storage.Options
	store  *storage.Store
}

func newFixture(t *testing.T, h BlobHarness, encrypted bool) *fixture {
	t.Helper()
	f := &fixture{h: h, bucket: h.NewBucket(t), meta: h.NewMetadata(t)}
	t.Cleanup(func() { _ = f.meta.Close() })
	f.opts = storage.Options{Sync: h.Sync, MaxPartSize: 1 << 20, WriteBufferSize: 5 << 20}
	if encrypted {
		f.opts.Keeper = newKeeper(t)
	} else {
		f.opts.DisableEncryption = true
	}
	f.store = f.newStore(t, f.opts)
	return f
}

func newKeeper(t *testing.T) *secrets.Keeper {
	t.Helper()
	key, err := localsecrets.NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	k := localsecrets.NewKeeper(key)
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func (f *fixture) newStore(t *testing.T, o storage.Options) *storage.Store {
	t.Helper()
	s, err := storage.New(f.bucket, f.meta, &o)
	if err != nil {
		t.Fatalf("storage.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// objects lists every key in the bucket.
func (f *fixture) objects(t *testing.T) []string {
	t.Helper()
	var keys []string
	it := f.bucket.List(nil)
	for {
		obj, err := it.Next(context.Background())
		if err == io.EOF {
			return keys
		}
		if err != nil {
			t.Fatalf("list bucket: %v", err)
		}
		keys = append(keys, obj.Key)
	}
}

func (f *fixture) wantObjects(t *testing.T, n int) {
	t.Helper()
	if got := f.objects(t); len(got) != n {
		t.Fatalf("bucket holds %d objects %v, want %d", len(got), got, n)
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func sha(b []byte) digest.Digest { return digest.FromBytes(b) }

func (f *fixture) put(t *testing.T, b []byte) storage.Descriptor {
	t.Helper()
	d, err := f.store.PutBlob(context.Background(), bytes.NewReader(b), storage.Descriptor{Digest: sha(b), Size: int64(len(b))})
	if err != nil {
		t.Fatalf("PutBlob(%d bytes): %v", len(b), err)
	}
	return d
}

// read reads a range twice, through Read and through WriteTo (which
// io.Copy uses), and fails the test unless both give the same bytes, or
// errors of the same kind.
func (f *fixture) read(t *testing.T, s *storage.Store, d digest.Digest, off, n int64) ([]byte, error) {
	t.Helper()
	open := func(use func(*storage.BlobReader) ([]byte, error)) ([]byte, error) {
		r, err := s.OpenBlob(context.Background(), d, off, n)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return use(r)
	}
	got, err := open(func(r *storage.BlobReader) ([]byte, error) { return io.ReadAll(r) })
	var buf bytes.Buffer
	_, werr := open(func(r *storage.BlobReader) ([]byte, error) { _, err := r.WriteTo(&buf); return nil, err })
	if (err == nil) != (werr == nil) || errors.Is(err, storage.ErrCorrupt) != errors.Is(werr, storage.ErrCorrupt) ||
		errors.Is(err, storage.ErrNotFound) != errors.Is(werr, storage.ErrNotFound) {
		t.Fatalf("read %s [%d,+%d): Read and WriteTo disagree: %v; %v", d, off, n, err, werr)
	}
	if err == nil && !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("read %s [%d,+%d): Read and WriteTo return different bytes", d, off, n)
	}
	return got, err
}

func (f *fixture) mustRead(t *testing.T, d digest.Digest, off, n int64) []byte {
	t.Helper()
	b, err := f.read(t, f.store, d, off, n)
	if err != nil {
		t.Fatalf("read %s [%d,+%d): %v", d, off, n, err)
	}
	return b
}

var blobTests = []struct {
	name string
	fn   func(*testing.T, *fixture)
}{
	{"RoundTrip", testRoundTrip},
	{"Ranges", testRanges},
	{"DigestMismatch", testDigestMismatch},
	{"SizeMismatch", testSizeMismatch},
	{"InvalidDigest", testInvalidDigest},
	{"NotFound", testNotFound},
	{"Deduplicate", testDeduplicate},
	{"ConcurrentPuts", testConcurrentPuts},
	{"Delete", testDelete},
	{"AdversarialReaders", testAdversarialReaders},
	{"Cancelled", testCancelled},
	{"MetadataFailure", testMetadataFailure},
	{"MaxBlobSize", testMaxBlobSize},
	{"ChunkedUpload", testChunkedUpload},
	{"UploadResumedElsewhere", testUploadResumedElsewhere},
	{"UploadOffsetAndDigestErrors", testUploadErrors},
	{"UploadSHA512", testUploadSHA512},
	{"UploadConcurrentAppends", testUploadConcurrentAppends},
	{"UploadCancelAndExpire", testUploadCancelAndExpire},
	{"Closed", testClosed},
}

// sizes straddle the encryption segment and the part boundaries.
var sizes = []int{0, 1, 17, envelope.SegmentSize - envelope.HeaderSize - envelope.TagSize - 1,
	envelope.SegmentSize - envelope.HeaderSize - envelope.TagSize,
	envelope.SegmentSize - envelope.HeaderSize - envelope.TagSize + 1,
	3*envelope.SegmentSize + 5, 1<<20 - 1, 1 << 20, 1<<20 + 1, 2<<20 + 12345}

func testRoundTrip(t *testing.T, f *fixture) {
	for i, n := range sizes {
		b := randBytes(uint64(i), n)
		d := f.put(t, b)
		if d.Digest != sha(b) || d.Size != int64(n) {
			t.Fatalf("PutBlob = %v, want %s/%d", d, sha(b), n)
		}
		st, err := f.store.StatBlob(context.Background(), d.Digest)
		if err != nil || st != d {
			t.Fatalf("StatBlob = %v, %v; want %v", st, err, d)
		}
		if got := f.mustRead(t, d.Digest, 0, -1); !bytes.Equal(got, b) {
			t.Fatalf("size %d: read back %d bytes that differ", n, len(got))
		}
	}
	// A put without a declared digest or size names the content itself.
	b := randBytes(99, 1000)
	d, err := f.store.PutBlob(context.Background(), bytes.NewReader(b), storage.Descriptor{Size: -1})
	if err != nil || d.Digest != sha(b) || d.Size != 1000 {
		t.Fatalf("PutBlob(undeclared) = %v, %v", d, err)
	}
}

func testRanges(t *testing.T, f *fixture) {
	const n = 2<<20 + 777 // three parts at MaxPartSize 1 MiB
	b := randBytes(7, n)
	d := f.put(t, b)
	seg := int64(envelope.SegmentSize)
	points := []int64{0, 1, seg - 41, seg - 40, seg - 39, seg, 3*seg + 7, 1<<20 - 1, 1 << 20, 1<<20 + 1, 2 << 20, n - 1, n}
	for _, off := range points {
		for _, end := range points {
			if end < off {
				continue
			}
			got := f.mustRead(t, d.Digest, off, end-off)
			if !bytes.Equal(got, b[off:end]) {
				t.Fatalf("range [%d,%d): content differs", off, end)
			}
		}
		if got := f.mustRead(t, d.Digest, off, -1); !bytes.Equal(got, b[off:]) {
			t.Fatalf("range [%d,end): content differs", off)
		}
	}
	for _, r := range [][2]int64{{-1, 1}, {0, n + 1}, {n + 1, -1}, {n, 1}, {5, -2}, {n - 1, 2}} {
		_, err := f.store.OpenBlob(context.Background(), d.Digest, r[0], r[1])
		var re *storage.RangeError
		if !errors.As(err, &re) {
			t.Errorf("OpenBlob(off=%d, n=%d) = %v, want *RangeError", r[0], r[1], err)
		}
	}
}

func testDigestMismatch(t *testing.T, f *fixture) {
	b := randBytes(1, 300_000)
	wrong := sha([]byte("something else"))
	_, err := f.store.PutBlob(context.Background(), bytes.NewReader(b), storage.Descriptor{Digest: wrong, Size: int64(len(b))})
	var me *storage.DigestMismatchError
	if !errors.As(err, &me) || me.Got != sha(b) || me.Want != wrong || me.Size != int64(len(b)) {
		t.Fatalf("PutBlob with wrong digest = %v, want *DigestMismatchError{%s, %s}", err, wrong, sha(b))
	}
	for _, d := range []digest.Digest{wrong, sha(b)} {
		if _, err := f.store.StatBlob(context.Background(), d); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("StatBlob(%s) after a failed put = %v, want ErrNotFound", d, err)
		}
	}
	f.wantObjects(t, 0)
}

func testSizeMismatch(t *testing.T, f *fixture) {
	b := randBytes(2, 70_000)
	for _, declared := range []int64{69_999, 70_001, 0} {
		_, err := f.store.PutBlob(context.Background(), bytes.NewReader(b), storage.Descriptor{Digest: sha(b), Size: declared})
		var se *storage.SizeMismatchError
		if !errors.As(err, &se) || se.Want != declared {
			t.Fatalf("PutBlob(declared %d, body %d) = %v, want *SizeMismatchError", declared, len(b), err)
		}
	}
	if _, err := f.store.StatBlob(context.Background(), sha(b)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("StatBlob after failed puts = %v, want ErrNotFound", err)
	}
	f.wantObjects(t, 0)
}

func testInvalidDigest(t *testing.T, f *fixture) {
	ctx := context.Background()
	for _, d := range []digest.Digest{"md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:abc", "nonsense", "sha256:" + digest.Digest(bytes.Repeat([]byte("Z"), 64))} {
		var de *storage.InvalidDigestError
		if _, err := f.store.PutBlob(ctx, bytes.NewReader(nil), storage.Descriptor{Digest: d, Size: 0}); !errors.As(err, &de) {
			t.Errorf("PutBlob(%q) = %v, want *InvalidDigestError", d, err)
		}
		if _, err := f.store.StatBlob(ctx, d); !errors.As(err, &de) {
			t.Errorf("StatBlob(%q) = %v, want *InvalidDigestError", d, err)
		}
		if _, err := f.store.OpenBlob(ctx, d, 0, -1); !errors.As(err, &de) {
			t.Errorf("OpenBlob(%q) = %v, want *InvalidDigestError", d, err)
		}
		if err := f.store.DeleteBlob(ctx, d); !errors.As(err, &de) {
			t.Errorf("DeleteBlob(%q) = %v, want *InvalidDigestError", d, err)
		}
	}
	f.wantObjects(t, 0)
}

func testNotFound(t *testing.T, f *fixture) {
	ctx := context.Background()
	d := sha([]byte("absent"))
	if _, err := f.store.StatBlob(ctx, d); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("StatBlob = %v, want ErrNotFound", err)
	}
	if _, err := f.store.OpenBlob(ctx, d, 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("OpenBlob = %v, want ErrNotFound", err)
	}
	if err := f.store.DeleteBlob(ctx, d); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteBlob = %v, want ErrNotFound", err)
	}
	if _, err := f.store.ResumeUpload(ctx, "no-such-upload"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ResumeUpload = %v, want ErrNotFound", err)
	}
}

func testDeduplicate(t *testing.T, f *fixture) {
	b := randBytes(3, 1<<20+10) // two parts
	f.put(t, b)
	f.wantObjects(t, 2)
	f.put(t, b)
	f.wantObjects(t, 2)
	if got := f.mustRead(t, sha(b), 0, -1); !bytes.Equal(got, b) {
		t.Fatal("content differs after a duplicate put")
	}
}

func testConcurrentPuts(t *testing.T, f *fixture) {
	b := randBytes(4, 200_000)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := f.store.PutBlob(context.Background(), bytes.NewReader(b), storage.Descriptor{Digest: sha(b), Size: int64(len(b))})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent PutBlob: %v", err)
		}
	}
	f.wantObjects(t, 1)
	if got := f.mustRead(t, sha(b), 0, -1); !bytes.Equal(got, b) {
		t.Fatal("content differs after concurrent puts")
	}
}

func testDelete(t *testing.T, f *fixture) {
	ctx := context.Background()
	b := randBytes(5, 1<<20+1)
	d := f.put(t, b)
	keep := f.put(t, []byte("keep me"))
	if err := f.store.DeleteBlob(ctx, d.Digest); err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	if _, err := f.store.StatBlob(ctx, d.Digest); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("StatBlob after delete = %v, want ErrNotFound", err)
	}
	if err := f.store.DeleteBlob(ctx, d.Digest); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second DeleteBlob = %v, want ErrNotFound", err)
	}
	f.wantObjects(t, 1)
	if got := f.mustRead(t, keep.Digest, 0, -1); string(got) != "keep me" {
		t.Fatalf("other blob reads %q", got)
	}
}

func testAdversarialReaders(t *testing.T, f *fixture) {
	ctx := context.Background()
	b := randBytes(6, 150_000)
	want := storage.Descriptor{Digest: sha(b), Size: int64(len(b))}
	for name, r := range map[string]io.Reader{
		"OneByte": iotest.OneByteReader(bytes.NewReader(b)),
		"Half":    iotest.HalfReader(bytes.NewReader(b)),
		"DataErr": iotest.DataErrReader(bytes.NewReader(b)),
	} {
		d, err := f.store.PutBlob(ctx, r, want)
		if err != nil || d != want {
			t.Fatalf("%s reader: PutBlob = %v, %v", name, d, err)
		}
	}
	failing := io.MultiReader(bytes.NewReader(b[:100_000]), iotest.ErrReader(errors.New("connection reset")))
	other := storage.Descriptor{Digest: sha(b[:120_000]), Size: 120_000}
	if _, err := f.store.PutBlob(ctx, failing, other); err == nil {
		t.Fatal("PutBlob from a failing reader succeeded")
	}
	if _, err := f.store.PutBlob(ctx, iotest.TimeoutReader(bytes.NewReader(b[:120_000])), other); err == nil {
		t.Fatal("PutBlob from a timing-out reader succeeded")
	}
	if _, err := f.store.StatBlob(ctx, other.Digest); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("StatBlob after failed reads = %v, want ErrNotFound", err)
	}
	f.wantObjects(t, 1)
}

func testCancelled(t *testing.T, f *fixture) {
	ctx, cancel := context.WithCancel(context.Background())
	b := randBytes(8, 3<<20)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(b[:1<<20])
		cancel()
		_, _ = pw.Write(b[1<<20:])
		_ = pw.Close()
	}()
	_, err := f.store.PutBlob(ctx, pr, storage.Descriptor{Digest: sha(b), Size: int64(len(b))})
	if err == nil {
		t.Fatal("PutBlob with a cancelled context succeeded")
	}
	_ = pr.CloseWithError(err)
	if _, err := f.store.StatBlob(context.Background(), sha(b)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("StatBlob after a cancelled put = %v, want ErrNotFound", err)
	}
	f.wantObjects(t, 0)
}

// failingMeta fails the chosen metadata writes, as a crash between "blob
// durable" and "metadata committed" would.
type failingMeta struct {
	driver.Metadata
	failPut, failCommit, failUpdate bool
}

var errInjected = errors.New("injected metadata failure")

func (m *failingMeta) PutBlob(ctx context.Context, b *driver.Blob) (*driver.Blob, bool, error) {
	if m.failPut {
		return nil, false, errInjected
	}
	return m.Metadata.PutBlob(ctx, b)
}

func (m *failingMeta) CommitUpload(ctx context.Context, id string, v int64, b *driver.Blob) (*driver.Blob, bool, error) {
	if m.failCommit {
		return nil, false, errInjected
	}
	return m.Metadata.CommitUpload(ctx, id, v, b)
}

func (m *failingMeta) UpdateUpload(ctx context.Context, u *driver.Upload) error {
	if m.failUpdate {
		return errInjected
	}
	return m.Metadata.UpdateUpload(ctx, u)
}

func testMetadataFailure(t *testing.T, f *fixture) {
	ctx := context.Background()
	fm := &failingMeta{Metadata: f.meta, failPut: true, failCommit: true, failUpdate: true}
	s, err := storage.New(f.bucket, fm, &f.opts)
	if err != nil {
		t.Fatal(err)
	}
	b := randBytes(9, 1<<20+100)
	if _, err := s.PutBlob(ctx, bytes.NewReader(b), storage.Descriptor{Digest: sha(b), Size: -1}); !errors.Is(err, errInjected) {
		t.Fatalf("PutBlob = %v, want the injected failure", err)
	}
	u, err := s.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Append(ctx, 0, bytes.NewReader(b[:1000]), 1000); !errors.Is(err, errInjected) {
		t.Fatalf("Append = %v, want the injected failure", err)
	}
	if _, err := u.Commit(ctx, sha(b), bytes.NewReader(b), int64(len(b))); !errors.Is(err, errInjected) {
		t.Fatalf("Commit = %v, want the injected failure", err)
	}
	if _, err := f.store.StatBlob(ctx, sha(b)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("StatBlob = %v, want ErrNotFound", err)
	}
	if u.Offset() != 0 {
		t.Fatalf("upload offset %d after failures, want 0", u.Offset())
	}
	f.wantObjects(t, 0)
	// The session is intact and usable once the backend recovers.
	*fm = failingMeta{Metadata: f.meta}
	if _, err := u.Commit(ctx, sha(b), bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Commit after recovery: %v", err)
	}
	if got := f.mustRead(t, sha(b), 0, -1); !bytes.Equal(got, b) {
		t.Fatal("content differs")
	}
}

func testMaxBlobSize(t *testing.T, f *fixture) {
	ctx := context.Background()
	o := f.opts
	o.MaxBlobSize = 100_000
	s := f.newStore(t, o)
	b := randBytes(10, 100_001)
	var tl *storage.TooLargeError
	if _, err := s.PutBlob(ctx, bytes.NewReader(b), storage.Descriptor{Size: -1}); !errors.As(err, &tl) {
		t.Fatalf("PutBlob over the limit = %v, want *TooLargeError", err)
	}
	if _, err := s.PutBlob(ctx, bytes.NewReader(b), storage.Descriptor{Size: int64(len(b))}); !errors.As(err, &tl) {
		t.Fatalf("PutBlob declared over the limit = %v, want *TooLargeError", err)
	}
	u, err := s.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Append(ctx, 0, bytes.NewReader(b[:60_000]), -1); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Append(ctx, 60_000, bytes.NewReader(b[60_000:]), -1); !errors.As(err, &tl) {
		t.Fatalf("Append over the limit = %v, want *TooLargeError", err)
	}
	if _, err := s.PutBlob(ctx, bytes.NewReader(b[:100_000]), storage.Descriptor{Size: -1}); err != nil {
		t.Fatalf("PutBlob at the limit: %v", err)
	}
}

func (f *fixture) appendAll(t *testing.T, u *storage.Upload, b []byte, chunk int) {
	t.Helper()
	for off := 0; off < len(b); off += chunk {
		end := min(off+chunk, len(b))
		got, err := u.Append(context.Background(), int64(off), bytes.NewReader(b[off:end]), int64(end-off))
		if err != nil {
			t.Fatalf("Append at %d: %v", off, err)
		}
		if got != int64(end) {
			t.Fatalf("Append returned offset %d, want %d", got, end)
		}
	}
}

func testChunkedUpload(t *testing.T, f *fixture) {
	ctx := context.Background()
	b := randBytes(11, 2<<20+333)
	u, err := f.store.StartUpload(ctx, &storage.UploadOptions{Labels: map[string]string{"repository": "team/app"}})
	if err != nil {
		t.Fatal(err)
	}
	f.appendAll(t, u, b[:2<<20], 700_001)
	d, err := u.Commit(ctx, sha(b), bytes.NewReader(b[2<<20:]), -1)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if d.Digest != sha(b) || d.Size != int64(len(b)) {
		t.Fatalf("Commit = %v", d)
	}
	if got := f.mustRead(t, d.Digest, 0, -1); !bytes.Equal(got, b) {
		t.Fatal("content differs")
	}
	if got := f.mustRead(t, d.Digest, 699_990, 20); !bytes.Equal(got, b[699_990:700_010]) {
		t.Fatal("range across chunks differs")
	}
	if _, err := f.store.ResumeUpload(ctx, u.ID()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ResumeUpload after commit = %v, want ErrNotFound", err)
	}
	// An empty upload commits to the empty blob.
	u2, err := f.store.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := u2.Commit(ctx, sha(nil), nil, -1); err != nil || d.Size != 0 {
		t.Fatalf("empty Commit = %v, %v", d, err)
	}
}

func testUploadResumedElsewhere(t *testing.T, f *fixture) {
	ctx := context.Background()
	b := randBytes(12, 900_000)
	u, err := f.store.StartUpload(ctx, &storage.UploadOptions{Labels: map[string]string{"repository": "a/b"}})
	if err != nil {
		t.Fatal(err)
	}
	f.appendAll(t, u, b[:300_000], 300_000)
	// A second node sharing bucket and metadata continues the session.
	other := f.newStore(t, f.opts)
	u2, err := other.ResumeUpload(ctx, u.ID())
	if err != nil {
		t.Fatalf("ResumeUpload: %v", err)
	}
	if u2.Offset() != 300_000 || u2.Labels()["repository"] != "a/b" {
		t.Fatalf("resumed session at %d with labels %v", u2.Offset(), u2.Labels())
	}
	if _, err := u2.Append(ctx, 300_000, bytes.NewReader(b[300_000:600_000]), -1); err != nil {
		t.Fatal(err)
	}
	// The first node's view is stale: its append loses the race cleanly.
	if _, err := u.Append(ctx, 300_000, bytes.NewReader(b[300_000:600_000]), -1); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale Append = %v, want ErrConflict", err)
	}
	u3, err := f.store.ResumeUpload(ctx, u.ID())
	if err != nil {
		t.Fatal(err)
	}
	d, err := u3.Commit(ctx, sha(b), bytes.NewReader(b[600_000:]), int64(len(b)-600_000))
	if err != nil {
		t.Fatalf("Commit on a third view: %v", err)
	}
	if got := f.mustRead(t, d.Digest, 0, -1); !bytes.Equal(got, b) {
		t.Fatal("content differs")
	}
	f.wantObjects(t, 3)
}

func testUploadErrors(t *testing.T, f *fixture) {
	ctx := context.Background()
	b := randBytes(13, 50_000)
	u, err := f.store.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.appendAll(t, u, b[:20_000], 20_000)
	var oe *storage.OffsetError
	for _, off := range []int64{0, 19_999, 20_001} {
		if _, err := u.Append(ctx, off, bytes.NewReader(b[20_000:]), -1); !errors.As(err, &oe) || oe.Want != 20_000 || oe.Got != off {
			t.Fatalf("Append at %d = %v, want *OffsetError{20000, %d}", off, err, off)
		}
	}
	var se *storage.SizeMismatchError
	if _, err := u.Append(ctx, 20_000, bytes.NewReader(b[20_000:30_000]), 10_001); !errors.As(err, &se) {
		t.Fatalf("short chunk = %v, want *SizeMismatchError", err)
	}
	var me *storage.DigestMismatchError
	if _, err := u.Commit(ctx, sha(b[:1]), bytes.NewReader(b[20_000:]), -1); !errors.As(err, &me) || me.Got != sha(b) {
		t.Fatalf("Commit with wrong digest = %v, want *DigestMismatchError", err)
	}
	var de *storage.InvalidDigestError
	if _, err := u.Commit(ctx, "sha256:nope", nil, -1); !errors.As(err, &de) {
		t.Fatalf("Commit with invalid digest = %v, want *InvalidDigestError", err)
	}
	// The session survived all of that unchanged.
	if u.Offset() != 20_000 {
		t.Fatalf("offset %d, want 20000", u.Offset())
	}
	f.wantObjects(t, 1)
	if _, err := u.Commit(ctx, sha(b), bytes.NewReader(b[20_000:]), -1); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func testUploadSHA512(t *testing.T, f *fixture) {
	ctx := context.Background()
	b := randBytes(14, 400_000)
	sum := sha512.Sum512(b)
	want := digest.NewDigestFromBytes(digest.SHA512, sum[:])
	// Monolithic: nothing received before the commit, so the session
	// switches to the commit's algorithm.
	u, err := f.store.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := u.Commit(ctx, want, bytes.NewReader(b), int64(len(b))); err != nil || d.Digest != want {
		t.Fatalf("monolithic sha512 Commit = %v, %v", d, err)
	}
	// Chunked with SHA-256 tracked only: the commit re-reads the parts.
	c := randBytes(15, 400_000)
	csum := sha512.Sum512(c)
	cwant := digest.NewDigestFromBytes(digest.SHA512, csum[:])
	u, err = f.store.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.appendAll(t, u, c[:250_000], 100_000)
	if d, err := u.Commit(ctx, cwant, bytes.NewReader(c[250_000:]), -1); err != nil || d.Digest != cwant {
		t.Fatalf("chunked sha512 Commit = %v, %v", d, err)
	}
	// Chunked with SHA-512 requested up front.
	e := randBytes(16, 300_000)
	esum := sha512.Sum512(e)
	ewant := digest.NewDigestFromBytes(digest.SHA512, esum[:])
	u, err = f.store.StartUpload(ctx, &storage.UploadOptions{Algorithms: []digest.Algorithm{storage.SHA256, storage.SHA512}})
	if err != nil {
		t.Fatal(err)
	}
	f.appendAll(t, u, e, 128_000)
	if d, err := u.Commit(ctx, ewant, nil, -1); err != nil || d.Digest != ewant {
		t.Fatalf("tracked sha512 Commit = %v, %v", d, err)
	}
	for _, d := range []digest.Digest{want, cwant, ewant} {
		if _, err := f.store.StatBlob(ctx, d); err != nil {
			t.Fatalf("StatBlob(%s): %v", d, err)
		}
	}
	got := f.mustRead(t, cwant, 0, -1)
	if sha256.Sum256(got) != sha256.Sum256(c) {
		t.Fatal("content differs")
	}
}

func testUploadConcurrentAppends(t *testing.T, f *fixture) {
	ctx := context.Background()
	u, err := f.store.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 6
	chunks := make([][]byte, writers)
	var wg sync.WaitGroup
	errs := make([]error, writers)
	views := make([]*storage.Upload, writers)
	for i := range writers {
		chunks[i] = randBytes(uint64(100+i), 50_000)
		if views[i], err = f.store.ResumeUpload(ctx, u.ID()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = views[i].Append(ctx, 0, bytes.NewReader(chunks[i]), -1)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, storage.ErrConflict):
			t.Fatalf("writer %d: %v, want ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	f.wantObjects(t, 1)
	v, err := f.store.ResumeUpload(ctx, u.ID())
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.Commit(ctx, sha(chunks[winner]), nil, -1)
	if err != nil {
		t.Fatalf("Commit the winner's content: %v", err)
	}
	if got := f.mustRead(t, d.Digest, 0, -1); !bytes.Equal(got, chunks[winner]) {
		t.Fatal("content differs")
	}
}

func testUploadCancelAndExpire(t *testing.T, f *fixture) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := f.opts
	o.Now = func() time.Time { return now }
	s := f.newStore(t, o)
	b := randBytes(17, 10_000)
	u, err := s.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.appendAll(t, u, b, 5000)
	f.wantObjects(t, 2)
	if err := u.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	f.wantObjects(t, 0)
	if err := u.Cancel(ctx); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second Cancel = %v, want ErrNotFound", err)
	}
	old, err := s.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.appendAll(t, old, b, 10_000)
	now = now.Add(2 * time.Hour)
	fresh, err := s.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.appendAll(t, fresh, b, 10_000)
	n, err := s.ExpireUploads(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("ExpireUploads = %d, %v; want 1", n, err)
	}
	if _, err := s.ResumeUpload(ctx, old.ID()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired session resumes: %v", err)
	}
	if _, err := fresh.Commit(ctx, sha(b), nil, -1); err != nil {
		t.Fatalf("fresh session: %v", err)
	}
	f.wantObjects(t, 1)
}

func testClosed(t *testing.T, f *fixture) {
	ctx := context.Background()
	d := f.put(t, []byte("x"))
	s := f.newStore(t, f.opts)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StatBlob(ctx, d.Digest); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("StatBlob on closed store = %v", err)
	}
	if _, err := s.PutBlob(ctx, bytes.NewReader(nil), storage.Descriptor{Size: -1}); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("PutBlob on closed store = %v", err)
	}
	if s.As(nil) {
		t.Fatal("As(nil) = true")
	}
}

// corrupt rewrites one stored object with a byte flipped.
func (f *fixture) corrupt(t *testing.T, key string, at int) {
	t.Helper()
	ctx := context.Background()
	b, err := f.bucket.ReadAll(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b[at%len(b)] ^= 0x40
	if err := f.bucket.WriteAll(ctx, key, b, nil); err != nil {
		t.Fatal(err)
	}
}

func testCorruption(t *testing.T, f *fixture) {
	b := randBytes(18, 200_000)
	d := f.put(t, b)
	keys := f.objects(t)
	if len(keys) != 1 {
		t.Fatalf("objects: %v", keys)
	}
	orig, err := f.bucket.ReadAll(context.Background(), keys[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{0, 5, 39, 40, 41, 65535, 65536, 100_000, len(orig) - 17, len(orig) - 1} {
		f.corrupt(t, keys[0], at)
		for _, r := range [][2]int64{{0, -1}, {0, 10}, {150_000, 100}, {int64(len(b) - 1), 1}} {
			got, err := f.read(t, f.store, d.Digest, r[0], r[1])
			if err == nil {
				// Only a range whose segments avoid the flip may succeed,
				// and then with exactly the right bytes.
				end := r[0] + r[1]
				if r[1] < 0 {
					end = int64(len(b))
				}
				if !bytes.Equal(got, b[r[0]:end]) {
					t.Fatalf("flip at %d: range %v returned wrong bytes without an error", at, r)
				}
				continue
			}
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("flip at %d: range %v: %v, want ErrCorrupt", at, r, err)
			}
		}
		if _, err := f.read(t, f.store, d.Digest, 0, -1); !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("flip at %d: full read = %v, want ErrCorrupt", at, err)
		}
		if err := f.bucket.WriteAll(context.Background(), keys[0], orig, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Truncation at a segment boundary is caught too.
	if err := f.bucket.WriteAll(context.Background(), keys[0], orig[:envelope.SegmentSize], nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.read(t, f.store, d.Digest, 0, -1); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("truncated object: %v, want ErrCorrupt", err)
	}
}

func testSwappedObjects(t *testing.T, f *fixture) {
	ctx := context.Background()
	a, b := randBytes(19, 5000), randBytes(20, 5000)
	da := f.put(t, a)
	f.put(t, b)
	keys := f.objects(t)
	ca, _ := f.bucket.ReadAll(ctx, keys[0])
	cb, _ := f.bucket.ReadAll(ctx, keys[1])
	_ = f.bucket.WriteAll(ctx, keys[0], cb, nil)
	_ = f.bucket.WriteAll(ctx, keys[1], ca, nil)
	if _, err := f.read(t, f.store, da.Digest, 0, -1); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("swapped objects: %v, want ErrCorrupt", err)
	}
}

func testKeyRotation(t *testing.T, f *fixture) {
	ctx := context.Background()
	var blobs [][]byte
	for i := range 5 {
		b := randBytes(uint64(30+i), 70_000*(i+1))
		f.put(t, b)
		blobs = append(blobs, b)
	}
	before := map[string][]byte{}
	for _, k := range f.objects(t) {
		before[k], _ = f.bucket.ReadAll(ctx, k)
	}
	o := f.opts
	o.Keeper, o.KeyID = newKeeper(t), "kek-2"
	o.PreviousKeepers = map[string]*secrets.Keeper{"default": f.opts.Keeper}
	rotating := f.newStore(t, o)
	// Old blobs stay readable through the previous keeper during rotation.
	if got, err := f.read(t, rotating, sha(blobs[0]), 0, -1); err != nil || !bytes.Equal(got, blobs[0]) {
		t.Fatalf("read during rotation: %v", err)
	}
	n, err := rotating.RotateKeys(ctx)
	if err != nil || n != len(blobs) {
		t.Fatalf("RotateKeys = %d, %v; want %d", n, err, len(blobs))
	}
	if n, err := rotating.RotateKeys(ctx); err != nil || n != 0 {
		t.Fatalf("second RotateKeys = %d, %v; want 0", n, err)
	}
	// Content was not rewritten.
	for k, b := range before {
		now, err := f.bucket.ReadAll(ctx, k)
		if err != nil || !bytes.Equal(now, b) {
			t.Fatalf("object %s changed during rotation", k)
		}
	}
	// The old keeper is no longer needed.
	o.PreviousKeepers = nil
	after := f.newStore(t, o)
	for _, b := range blobs {
		if got, err := f.read(t, after, sha(b), 0, -1); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("read after rotation: %v", err)
		}
	}
	// A store with only the old key cannot read rotated blobs.
	if _, err := f.read(t, f.store, sha(blobs[1]), 0, -1); err == nil {
		t.Fatal("old key still reads rotated blobs")
	}
}

func testFaultyBucket(t *testing.T, h BlobHarness, encrypted bool) {
	ctx := context.Background()
	f := newFixture(t, h, encrypted)
	fb := NewFaultyBucket(f.bucket, Faults{})
	o := f.opts
	s, err := storage.New(fb.Bucket, f.meta, &o)
	if err != nil {
		t.Fatal(err)
	}
	b := randBytes(40, 2<<20+100) // three parts
	want := storage.Descriptor{Digest: sha(b), Size: int64(len(b))}
	cases := []struct {
		name string
		f    Faults
	}{
		{"write fails in the first part", Faults{FailWriteAfter: 100_000}},
		{"write fails in the third part", Faults{FailWriteAfter: 2<<20 + 50}},
		{"first close fails", Faults{FailCloseN: 1}},
		{"last close fails", Faults{FailCloseN: 3}},
	}
	for _, c := range cases {
		fb.Set(c.f)
		if _, err := s.PutBlob(ctx, bytes.NewReader(b), want); err == nil {
			t.Fatalf("%s: PutBlob succeeded", c.name)
		}
		fb.Set(Faults{})
		if _, err := s.StatBlob(ctx, want.Digest); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%s: StatBlob = %v, want ErrNotFound", c.name, err)
		}
		f.wantObjects(t, 0)
		// The same failure in the middle of an upload chunk leaves the
		// session as it was.
		u, err := s.StartUpload(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		fb.Set(c.f)
		if _, err := u.Append(ctx, 0, bytes.NewReader(b), -1); err == nil {
			t.Fatalf("%s: Append succeeded", c.name)
		}
		fb.Set(Faults{})
		if u.Offset() != 0 {
			t.Fatalf("%s: offset %d after a failed chunk", c.name, u.Offset())
		}
		f.wantObjects(t, 0)
		if err := u.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Reads that fail mid-way report an error, never short content.
	if _, err := s.PutBlob(ctx, bytes.NewReader(b), want); err != nil {
		t.Fatal(err)
	}
	fb.Set(Faults{FailReadAfter: 1 << 20})
	if got, err := f.read(t, s, want.Digest, 0, -1); err == nil {
		t.Fatalf("read through failing bucket returned %d bytes and no error", len(got))
	}
	// A failed object delete orphans the object but the blob is gone.
	fb.Set(Faults{FailDeletes: true})
	if err := s.DeleteBlob(ctx, want.Digest); err != nil {
		t.Fatalf("DeleteBlob with failing object deletes: %v", err)
	}
	if _, err := s.StatBlob(ctx, want.Digest); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("StatBlob after delete = %v", err)
	}
}
