package storage_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/storagetest"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"
)

func TestMemBlob(t *testing.T) {
	storagetest.RunBlobTests(t, storagetest.BlobHarness{
		NewBucket: func(t *testing.T) *blob.Bucket {
			b := memblob.OpenBucket(nil)
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
	})
}

func TestFileBlob(t *testing.T) {
	var dir string
	storagetest.RunBlobTests(t, storagetest.BlobHarness{
		NewBucket: func(t *testing.T) *blob.Bucket {
			dir = filepath.Join(t.TempDir(), "blobs")
			b, _, err := storage.OpenBucket(context.Background(), "file://"+filepath.ToSlash(dir))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
		// Each test gets a new directory; the syncer looks it up lazily.
		Sync: func(ctx context.Context, key string) error {
			_, sync, err := storage.OpenBucket(ctx, "file://"+filepath.ToSlash(dir))
			if err != nil {
				return err
			}
			return sync(ctx, key)
		},
	})
}

func TestS3Blob(t *testing.T) {
	storagetest.RunBlobTests(t, storagetest.BlobHarness{
		NewBucket: func(t *testing.T) *blob.Bucket { return testsvc.S3Bucket(t) },
	})
}
