package storage_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/opencontainers/go-digest"
)

// syncRecorder wraps a file bucket's sync function and records the keys
// it made durable.
type syncRecorder struct {
	mu     sync.Mutex
	synced []string
	sync   func(context.Context, string) error
}

func (r *syncRecorder) Sync(ctx context.Context, key string) error {
	r.mu.Lock()
	r.synced = append(r.synced, key)
	r.mu.Unlock()
	return r.sync(ctx, key)
}

func (r *syncRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.synced)
}

// TestUploadChunksSyncedAtCommit checks that the chunks of a session are
// made durable once, when it is committed (not one fsync round per chunk),
// and that a session resumed by another store instance (as after a
// restart) has its content read back and verified before it becomes a
// blob: a chunk lost in a crash fails the commit instead of storing a
// corrupt blob.
func TestUploadChunksSyncedAtCommit(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blobs")
	_, fsync, err := storage.OpenBucket(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	meta := memmeta.New()
	open := func(rec *syncRecorder) *storage.Store {
		s, err := storage.Open(ctx, "file://"+filepath.ToSlash(dir), meta, &storage.Options{DisableEncryption: true, Sync: rec.Sync})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	chunks := [][]byte{bytes.Repeat([]byte("a"), 3000), bytes.Repeat([]byte("b"), 5000), bytes.Repeat([]byte("c"), 7000)}
	all := bytes.Join(chunks, nil)
	want := digest.FromBytes(all)
	startWithTwoChunks := func(t *testing.T, s *storage.Store) *storage.Upload {
		u, err := s.StartUpload(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var off int64
		for _, c := range chunks[:2] {
			if off, err = u.Append(ctx, off, bytes.NewReader(c), int64(len(c))); err != nil {
				t.Fatal(err)
			}
		}
		return u
	}

	t.Run("same instance", func(t *testing.T) {
		rec := &syncRecorder{sync: fsync}
		s := open(rec)
		u := startWithTwoChunks(t, s)
		if n := rec.count(); n != 0 {
			t.Fatalf("%d objects synced before the commit; want none", n)
		}
		d, err := u.Commit(ctx, want, bytes.NewReader(chunks[2]), int64(len(chunks[2])))
		if err != nil || d.Digest != want {
			t.Fatalf("commit: %v, %v", d, err)
		}
		if n := rec.count(); n != 3 {
			t.Fatalf("%d objects synced at the commit; want the 3 chunks", n)
		}
		b, err := meta.GetBlob(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range b.Parts {
			if p.Unsynced != "" {
				t.Errorf("blob part %s still marked unsynced", p.Key)
			}
		}
		if err := s.DeleteBlob(ctx, want); err != nil {
			t.Fatal(err)
		}
	})

	for _, lose := range []bool{false, true} {
		name := map[bool]string{false: "restart", true: "restart after a lost chunk"}[lose]
		t.Run(name, func(t *testing.T) {
			u := startWithTwoChunks(t, open(&syncRecorder{sync: fsync}))
			if lose {
				// What a crash before the data reached the disk leaves:
				// the file exists, its tail does not.
				files := 0
				_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
						if fi, _ := d.Info(); fi != nil && fi.Size() == 5000 {
							files++
							if err := os.Truncate(path, 1000); err != nil {
								t.Fatal(err)
							}
						}
					}
					return nil
				})
				if files != 1 {
					t.Fatalf("found %d files of the second chunk", files)
				}
			}
			rec := &syncRecorder{sync: fsync}
			after := open(rec)
			u2, err := after.ResumeUpload(ctx, u.ID())
			if err != nil {
				t.Fatal(err)
			}
			d, err := u2.Commit(ctx, want, bytes.NewReader(chunks[2]), int64(len(chunks[2])))
			if lose {
				var mismatch *storage.DigestMismatchError
				if !errors.As(err, &mismatch) && !errors.Is(err, storage.ErrCorrupt) {
					t.Fatalf("commit over a lost chunk: %v, %v; want a digest mismatch or corruption error", d, err)
				}
				if _, err := after.StatBlob(ctx, want); err == nil {
					t.Fatal("a blob was stored over a lost chunk")
				}
				return
			}
			if err != nil || d.Digest != want {
				t.Fatalf("commit after a restart: %v, %v", d, err)
			}
			if n := rec.count(); n != 3 {
				t.Errorf("%d objects synced at the commit; want 3", n)
			}
			if err := after.DeleteBlob(ctx, want); err != nil {
				t.Fatal(err)
			}
		})
	}
}
