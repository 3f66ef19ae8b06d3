package storage_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/memmeta"
	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
	"gocloud.dev/secrets/localsecrets"
)

// The benchmarks write to a file bucket in a temporary directory, fsynced
// as in production, with the in-memory metadata backend. Each reports its
// throughput as a ratio ("x-sha256") to raw SHA-256 hashing measured at the
// start of the same run, so results compare across machines:
//
//	go test -run NONE -bench . -benchtime 3x ./storage/
var benchSizes = []struct {
	name string
	n    int64
}{{"1MiB", 1 << 20}, {"64MiB", 64 << 20}, {"1GiB", 1 << 30}}

// genReader yields n pseudo-random bytes without holding them: a 1 MiB
// random block repeated, with a per-blob seed in the first bytes so that
// every blob has its own digest.
type genReader struct {
	block []byte
	n     int64
	off   int64
	seed  uint64
}

var benchBlock = func() []byte {
	b := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}()

func newGen(n int64, seed uint64) *genReader { return &genReader{block: benchBlock, n: n, seed: seed} }

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	start := g.off % int64(len(g.block))
	m := copy(p, g.block[start:min(int64(len(g.block)), start+g.n-g.off)])
	if g.off == 0 && m >= 8 {
		binary.LittleEndian.PutUint64(p, g.seed)
	}
	g.off += int64(m)
	return m, nil
}

var shaOnce struct {
	sync.Once
	mbps float64
}

// sha256MBps measures raw SHA-256 throughput over 256 MiB, once per run.
func sha256MBps() float64 {
	shaOnce.Do(func() {
		h := sha256.New()
		const total = 256 << 20
		start := time.Now()
		for i := 0; i < total/len(benchBlock); i++ {
			h.Write(benchBlock)
		}
		shaOnce.mbps = total / 1e6 / time.Since(start).Seconds()
	})
	return shaOnce.mbps
}

func benchStore(b *testing.B, encrypted bool) *storage.Store {
	return benchStoreAt(b, encrypted, "")
}

// benchStoreAt opens a store over blobURL, or over a fresh file bucket when
// blobURL is empty.
func benchStoreAt(b *testing.B, encrypted bool, blobURL string) *storage.Store {
	b.Helper()
	if blobURL == "" {
		blobURL = "file://" + filepath.ToSlash(filepath.Join(b.TempDir(), "blobs"))
	}
	s, err := storage.Open(context.Background(), blobURL, memmeta.New(), benchOptions(b, encrypted))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchOptions(b *testing.B, encrypted bool) *storage.Options {
	if !encrypted {
		return &storage.Options{DisableEncryption: true}
	}
	key, err := localsecrets.NewRandomKey()
	if err != nil {
		b.Fatal(err)
	}
	return &storage.Options{Keeper: localsecrets.NewKeeper(key)}
}

func modes() []struct {
	name string
	enc  bool
} {
	return []struct {
		name string
		enc  bool
	}{{"plain", false}, {"encrypted", true}}
}

func reportRatio(b *testing.B, bytes int64) {
	mbps := float64(bytes) * float64(b.N) / 1e6 / b.Elapsed().Seconds()
	b.ReportMetric(mbps/sha256MBps(), "x-sha256")
	b.ReportMetric(sha256MBps(), "sha256-MB/s")
}

// BenchmarkSHA256 is the peer: raw SHA-256 over 1 MiB blocks.
func BenchmarkSHA256(b *testing.B) {
	h := sha256.New()
	b.SetBytes(int64(len(benchBlock)))
	for b.Loop() {
		h.Write(benchBlock)
	}
}

// BenchmarkPut measures PutBlob (hash, encrypt, write, fsync, record) to
// a file bucket, and to a bucket that discards writes, which shows the cost
// of the pipeline itself without the disk.
func BenchmarkPut(b *testing.B) {
	for _, bucket := range []string{"file", "discard"} {
		for _, m := range modes() {
			for _, sz := range benchSizes {
				b.Run(bucket+"/"+m.name+"/"+sz.name, func(b *testing.B) {
					benchPut(b, bucket, m.enc, sz.n)
				})
			}
		}
	}
}

func benchPut(b *testing.B, bucket string, enc bool, n int64) {
	var s *storage.Store
	if bucket == "discard" {
		var err error
		s, err = storage.New(blob.NewBucket(discardDriver{}), memmeta.New(), benchOptions(b, enc))
		if err != nil {
			b.Fatal(err)
		}
	} else {
		s = benchStoreAt(b, enc, "")
	}
	ctx := context.Background()
	b.SetBytes(n)
	seed := uint64(0)
	for b.Loop() {
		seed++
		d, err := s.PutBlob(ctx, newGen(n, seed), storage.Descriptor{Size: n})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.DeleteBlob(ctx, d.Digest); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportRatio(b, n)
}

// BenchmarkGet measures reading a whole blob (fetch, decrypt).
func BenchmarkGet(b *testing.B) {
	for _, m := range modes() {
		for _, sz := range benchSizes {
			b.Run(m.name+"/"+sz.name, func(b *testing.B) {
				s := benchStore(b, m.enc)
				ctx := context.Background()
				d, err := s.PutBlob(ctx, newGen(sz.n, 1), storage.Descriptor{Size: sz.n})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(sz.n)
				for b.Loop() {
					r, err := s.OpenBlob(ctx, d.Digest, 0, -1)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, r); err != nil {
						b.Fatal(err)
					}
					r.Close()
				}
				reportRatio(b, sz.n)
			})
		}
	}
}

// peakHeap samples the live heap every few milliseconds while fn runs and
// returns how far it rose above where it started.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
			}
		}
	})
	fn()
	close(done)
	wg.Wait()
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// BenchmarkStreamHeap reports the peak heap growth while putting and then
// reading one blob: it must not depend on the blob's size.
func BenchmarkStreamHeap(b *testing.B) {
	for _, sz := range benchSizes[1:] {
		b.Run("encrypted/"+sz.name, func(b *testing.B) {
			s := benchStore(b, true)
			ctx := context.Background()
			var putPeak, getPeak uint64
			for i := 0; b.Loop(); i++ {
				var d storage.Descriptor
				putPeak = max(putPeak, peakHeap(func() {
					var err error
					if d, err = s.PutBlob(ctx, newGen(sz.n, uint64(i)), storage.Descriptor{Size: sz.n}); err != nil {
						b.Fatal(err)
					}
				}))
				getPeak = max(getPeak, peakHeap(func() {
					r, err := s.OpenBlob(ctx, d.Digest, 0, -1)
					if err != nil {
						b.Fatal(err)
					}
					defer r.Close()
					if _, err := io.Copy(io.Discard, r); err != nil {
						b.Fatal(err)
					}
				}))
				if err := s.DeleteBlob(ctx, d.Digest); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(putPeak)/(1<<20), "put-heap-MiB")
			b.ReportMetric(float64(getPeak)/(1<<20), "get-heap-MiB")
		})
	}
}

// discardDriver is a bucket that throws writes away, to measure the put
// pipeline (hashing, encryption, part handling) without any storage cost.
type discardDriver struct{}

func (discardDriver) ErrorCode(error) gcerrors.ErrorCode { return gcerrors.Unknown }
func (discardDriver) As(any) bool                        { return false }
func (discardDriver) ErrorAs(error, any) bool            { return false }
func (discardDriver) Close() error                       { return nil }
func (discardDriver) Attributes(context.Context, string) (*driver.Attributes, error) {
	return nil, errors.New("discard: no attributes")
}
func (discardDriver) ListPaged(context.Context, *driver.ListOptions) (*driver.ListPage, error) {
	return &driver.ListPage{}, nil
}
func (discardDriver) NewRangeReader(context.Context, string, int64, int64, *driver.ReaderOptions) (driver.Reader, error) {
	return nil, errors.New("discard: nothing to read")
}
func (discardDriver) NewTypedWriter(context.Context, string, string, *driver.WriterOptions) (driver.Writer, error) {
	return discardWriter{}, nil
}
func (discardDriver) Copy(context.Context, string, string, *driver.CopyOptions) error { return nil }
func (discardDriver) Delete(context.Context, string, *driver.DeleteOptions) error     { return nil }
func (discardDriver) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errors.New("discard: no URLs")
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) Close() error                { return nil }
