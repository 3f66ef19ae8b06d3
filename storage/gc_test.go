package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/berth-dev/berth/storage/storagetest"
	"github.com/opencontainers/go-digest"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
)

// clock is a settable clock for tests.
type clock struct {
	mu   sync.Mutex
	now  time.Time
	real bool // follow the real clock
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real {
		return time.Now()
	}
	return c.now
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type gcFixture struct {
	bucket *blob.Bucket
	meta   *memmeta.Metadata
	store  *storage.Store
	clock  *clock
}

func newGCFixture(t *testing.T, bucket *blob.Bucket) *gcFixture {
	t.Helper()
	if bucket == nil {
		bucket = memblob.OpenBucket(nil)
	}
	f := &gcFixture{bucket: bucket, meta: memmeta.New(), clock: &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	s, err := storage.New(bucket, f.meta, &storage.Options{DisableEncryption: true, Now: f.clock.Now, MaxPartSize: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	f.store = s
	t.Cleanup(func() { s.Close() })
	return f
}

// push stores an image: n layers and a config, linked and referenced by a
// manifest tagged tag. It returns the manifest's digest.
func (f *gcFixture) push(ctx context.Context, repo, tag string, seed int) (digest.Digest, error) {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","seed":%d}`, seed))
	var layers [][]byte
	for i := range 2 {
		layers = append(layers, bytes.Repeat([]byte{byte(seed), byte(i)}, 40_000+seed))
	}
	return f.pushImage(ctx, repo, tag, cfg, layers...)
}

// pushImage stores an image made of cfg and layers as a client does:
// blobs uploaded and linked first, then the manifest, tagged tag.
func (f *gcFixture) pushImage(ctx context.Context, repo, tag string, cfg []byte, layerBytes ...[]byte) (digest.Digest, error) {
	var layers []map[string]any
	for i, b := range append([][]byte{cfg}, layerBytes...) {
		d, err := f.store.PutBlob(ctx, bytes.NewReader(b), storage.Descriptor{Size: int64(len(b))})
		if err != nil {
			return "", err
		}
		if err := f.store.LinkBlob(ctx, repo, d.Digest, "test"); err != nil {
			return "", err
		}
		if i > 0 {
			layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.Digest, "size": d.Size})
		}
	}
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.FromBytes(cfg), "size": len(cfg)},
		"layers": layers,
	})
	rec, err := f.store.PutManifest(ctx, storage.ManifestInput{Repository: repo, Reference: tag, ContentType: "application/vnd.oci.image.manifest.v1+json", Body: m, By: "test"})
	if err != nil {
		return "", err
	}
	return rec.Digest, nil
}

// checkConsistent verifies that every manifest's bytes and blobs read back
// completely.
func (f *gcFixture) checkConsistent(t *testing.T, repo string, manifests []digest.Digest) {
	t.Helper()
	ctx := context.Background()
	for _, d := range manifests {
		m, err := f.store.ResolveManifest(ctx, repo, string(d))
		if err != nil {
			t.Fatalf("accepted manifest %s is gone: %v", d, err)
		}
		if _, err := f.store.ReadManifest(ctx, m); err != nil {
			t.Fatalf("manifest %s bytes unreadable: %v", d, err)
		}
		for _, b := range m.Blobs {
			if _, err := f.store.StatRepoBlob(ctx, repo, b); err != nil {
				t.Fatalf("manifest %s: blob %s not served by %s: %v", d, b, repo, err)
			}
			r, err := f.store.OpenBlob(ctx, b, 0, -1)
			if err != nil {
				t.Fatalf("manifest %s lost blob %s: %v", d, b, err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				t.Fatalf("manifest %s: blob %s unreadable: %v", d, b, err)
			}
			r.Close()
		}
	}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, nil)
	keep, err := f.push(ctx, "team/app", "v1", 1)
	if err != nil {
		t.Fatal(err)
	}
	// An unlinked blob, an upload abandoned, and an orphaned object.
	loose, err := f.store.PutBlob(ctx, bytes.NewReader([]byte("loose")), storage.Descriptor{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	up, err := f.store.StartUpload(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Append(ctx, 0, bytes.NewReader(make([]byte, 1000)), -1); err != nil {
		t.Fatal(err)
	}
	if err := f.bucket.WriteAll(ctx, "blobs/00/orphan", []byte("orphan"), nil); err != nil {
		t.Fatal(err)
	}

	// Within the grace period nothing goes.
	st, err := f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour})
	if err != nil || st != (storage.GCStats{}) {
		t.Fatalf("GC within grace = %+v, %v", st, err)
	}
	// The orphan's age comes from the bucket's clock, which the test cannot
	// set: use a negative-free grace relative to the store clock instead.
	f.clock.Add(48 * time.Hour)
	dry, err := f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour, DryRun: true, SkipOrphans: true})
	if err != nil || dry.BlobsDeleted != 1 || dry.UploadsExpired != 1 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if _, err := f.store.StatBlob(ctx, loose.Digest); err != nil {
		t.Fatalf("dry run deleted: %v", err)
	}
	st, err = f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour, SkipOrphans: true})
	if err != nil || st.BlobsDeleted != 1 || st.BlobBytes != 5 || st.UploadsExpired != 1 {
		t.Fatalf("GC = %+v, %v", st, err)
	}
	if _, err := f.store.StatBlob(ctx, loose.Digest); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unlinked blob survived: %v", err)
	}
	f.checkConsistent(t, "team/app", []digest.Digest{keep})
	// A second run finds nothing: collection is idempotent.
	if st, err := f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour, SkipOrphans: true}); err != nil || st != (storage.GCStats{}) {
		t.Fatalf("second GC = %+v, %v", st, err)
	}
	// Deleting the manifest and unlinking its blobs frees them.
	m, _ := f.store.ResolveManifest(ctx, "team/app", string(keep))
	if err := f.store.DeleteManifest(ctx, "team/app", keep, "test"); err != nil {
		t.Fatal(err)
	}
	for _, b := range m.Blobs {
		if err := f.store.UnlinkBlob(ctx, "team/app", b); err != nil {
			t.Fatal(err)
		}
	}
	st, err = f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour, SkipOrphans: true})
	if err != nil || st.BlobsDeleted != 4 { // config, two layers, manifest bytes
		t.Fatalf("GC after delete = %+v, %v", st, err)
	}
}

func TestGCOrphans(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, nil)
	d, err := f.push(ctx, "a/b", "x", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.bucket.WriteAll(ctx, "blobs/00/orphan", []byte("orphan"), nil); err != nil {
		t.Fatal(err)
	}
	// The bucket's modification times are real: move the store's clock
	// forward so that everything written so far is past the grace period.
	f.clock.now = time.Now().Add(2 * time.Hour)
	st, err := f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour})
	if err != nil || st.OrphansDeleted != 1 || st.OrphanBytes != 6 {
		t.Fatalf("GC = %+v, %v", st, err)
	}
	if ok, _ := f.bucket.Exists(ctx, "blobs/00/orphan"); ok {
		t.Fatal("orphan survived")
	}
	f.checkConsistent(t, "a/b", []digest.Digest{d})
}

// TestGCCrashRecovery kills collections half-way (every object delete
// fails, as if the process died after the metadata changes) and shows that
// the store stays consistent and the next collection finishes the job.
func TestGCCrashRecovery(t *testing.T) {
	ctx := context.Background()
	fb := storagetest.NewFaultyBucket(memblob.OpenBucket(nil), storagetest.Faults{})
	f := newGCFixture(t, fb.Bucket)
	keep, err := f.push(ctx, "a/b", "keep", 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := f.store.PutBlob(ctx, bytes.NewReader([]byte(fmt.Sprint("garbage", i))), storage.Descriptor{Size: -1}); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.now = time.Now().Add(2 * time.Hour)
	fb.Set(storagetest.Faults{FailDeletes: true})
	st, err := f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour})
	if err != nil || st.BlobsDeleted != 5 {
		t.Fatalf("crashing GC = %+v, %v", st, err)
	}
	f.checkConsistent(t, "a/b", []digest.Digest{keep})
	fb.Set(storagetest.Faults{})
	t.Logf("objects after the crashing GC: %v", listKeys(t, fb.Bucket))
	st, err = f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour})
	if err != nil || st.OrphansDeleted != 5 {
		t.Fatalf("recovering GC = %+v, %v", st, err)
	}
	f.checkConsistent(t, "a/b", []digest.Digest{keep})
}

// TestGCRacesPushes runs collections with no grace period at all while
// images are pushed, and proves that no accepted manifest ever loses a blob.
// Pushes may fail (a blob collected between its upload and its link) and
// are retried, as clients do.
func TestGCRacesPushes(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, nil)
	f.clock.real = true
	var (
		mu       sync.Mutex
		accepted []digest.Digest
		done     atomic.Bool
		wg       sync.WaitGroup
		retries  atomic.Int64
	)
	for w := range 4 {
		wg.Go(func() {
			for i := range 15 {
				for {
					d, err := f.push(ctx, "race/app", fmt.Sprintf("w%d-%d", w, i), w*100+i)
					if err == nil {
						mu.Lock()
						accepted = append(accepted, d)
						mu.Unlock()
						break
					}
					// A blob collected before its link, or a link pruned
					// before the manifest: the client uploads again.
					var me *storage.ManifestError
					if !errors.Is(err, driver.ErrNotFound) && (!errors.As(err, &me) || len(me.Missing) == 0) {
						t.Errorf("push: %v", err)
						return
					}
					retries.Add(1)
				}
			}
		})
	}
	gcs := 0
	var gcwg sync.WaitGroup
	gcwg.Go(func() {
		for !done.Load() {
			if _, err := f.store.GC(ctx, &storage.GCOptions{Grace: time.Nanosecond, SkipOrphans: true}); err != nil {
				t.Errorf("GC: %v", err)
				return
			}
			gcs++
		}
	})
	wg.Wait()
	done.Store(true)
	gcwg.Wait()
	t.Logf("%d manifests accepted, %d pushes retried, %d collections", len(accepted), retries.Load(), gcs)
	f.checkConsistent(t, "race/app", accepted)
	if _, err := f.store.GC(ctx, &storage.GCOptions{Grace: time.Nanosecond, SkipOrphans: true}); err != nil {
		t.Fatal(err)
	}
	f.checkConsistent(t, "race/app", accepted)
}

// TestGCDeletedImages deletes one of two images sharing a layer and shows
// that collection reclaims the deleted image's own blobs, stored and
// served through the repository, while the shared layer and the other
// image stay whole, and that a link renewed by a push in flight survives.
func TestGCDeletedImages(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, nil)
	const repo = "team/app"
	shared := bytes.Repeat([]byte("shared"), 20_000)
	cfgA, layerA := []byte(`{"architecture":"amd64","os":"linux","image":"a"}`), bytes.Repeat([]byte("a"), 70_000)
	cfgB, layerB := []byte(`{"architecture":"amd64","os":"linux","image":"b"}`), bytes.Repeat([]byte("b"), 70_000)
	a, err := f.pushImage(ctx, repo, "a", cfgA, layerA, shared)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.pushImage(ctx, repo, "b", cfgB, layerB, shared)
	if err != nil {
		t.Fatal(err)
	}
	own := []digest.Digest{digest.FromBytes(cfgA), digest.FromBytes(layerA)}
	var ownKeys []string
	for _, d := range append(own, a) {
		rec, err := f.meta.GetBlob(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range rec.Parts {
			ownKeys = append(ownKeys, p.Key)
		}
	}
	if err := f.store.DeleteManifest(ctx, repo, a, "test"); err != nil {
		t.Fatal(err)
	}

	// Within the grace period the links stay: a push may be about to
	// reference them.
	if st, err := f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour, SkipOrphans: true}); err != nil || st.LinksPruned != 0 || st.BlobsDeleted != 0 {
		t.Fatalf("GC within grace = %+v, %v", st, err)
	}
	// A push in flight uploads A's layer again, renewing its link.
	f.clock.Add(2 * time.Hour)
	if err := f.store.LinkBlob(ctx, repo, own[1], "test"); err != nil {
		t.Fatal(err)
	}
	st, err := f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour, SkipOrphans: true})
	if err != nil || st.LinksPruned != 1 || st.BlobsDeleted != 2 { // A's config and manifest bytes
		t.Fatalf("GC after the grace period = %+v, %v", st, err)
	}
	if _, err := f.store.StatRepoBlob(ctx, repo, own[1]); err != nil {
		t.Fatalf("layer renewed by a push in flight: %v", err)
	}
	// The push never stored its manifest: the next collection takes the
	// layer too.
	f.clock.Add(2 * time.Hour)
	st, err = f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour, SkipOrphans: true})
	if err != nil || st.LinksPruned != 1 || st.BlobsDeleted != 1 || st.BlobBytes != int64(len(layerA)) {
		t.Fatalf("second GC = %+v, %v", st, err)
	}
	for _, d := range own {
		if _, err := f.store.StatRepoBlob(ctx, repo, d); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("deleted image's blob %s still served by the repository: %v", d, err)
		}
		if _, err := f.store.StatBlob(ctx, d); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("deleted image's blob %s still stored: %v", d, err)
		}
	}
	for _, k := range ownKeys {
		if ok, err := f.bucket.Exists(ctx, k); err != nil || ok {
			t.Errorf("object %s of the deleted image still in the bucket (%v)", k, err)
		}
	}
	// B, with the shared layer, pulls whole.
	f.checkConsistent(t, repo, []digest.Digest{b})
	if _, err := f.store.StatRepoBlob(ctx, repo, digest.FromBytes(shared)); err != nil {
		t.Fatalf("shared layer: %v", err)
	}
	if st, err := f.store.GC(ctx, &storage.GCOptions{Grace: time.Hour, SkipOrphans: true}); err != nil || st != (storage.GCStats{}) {
		t.Fatalf("third GC = %+v, %v", st, err)
	}
	f.checkConsistent(t, repo, []digest.Digest{b})
}

func listKeys(t *testing.T, b *blob.Bucket) []string {
	var keys []string
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err != nil {
			return keys
		}
		keys = append(keys, o.Key)
	}
}
