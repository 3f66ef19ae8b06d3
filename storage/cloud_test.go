package storage_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"testing"

	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/storage/storagetest"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
)

// TestAzureBlob and TestGCSBlob run the suite against Azurite and
// fake-gcs-server (see .ci/services).
func TestAzureBlob(t *testing.T) { runCloud(t, "BERTH_TEST_AZURE_URL") }

func TestGCSBlob(t *testing.T) { runCloud(t, "BERTH_TEST_GCS_URL") }

func runCloud(t *testing.T, env string) {
	url := testsvc.URL(t, env)
	storagetest.RunBlobTests(t, storagetest.BlobHarness{
		NewBucket: func(t *testing.T) *blob.Bucket { return isolated(t, url) },
	})
}

// isolated opens the bucket at url limited to a fresh random prefix, and
// deletes everything under the prefix when the test ends.
func isolated(t *testing.T, url string) *blob.Bucket {
	ctx := context.Background()
	b, err := blob.OpenBucket(ctx, url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	p := blob.PrefixedBucket(b, "berth-test-"+hex.EncodeToString(rnd[:])+"/")
	t.Cleanup(func() {
		it := p.List(nil)
		for {
			o, err := it.Next(ctx)
			if err == io.EOF || err != nil {
				break
			}
			_ = p.Delete(ctx, o.Key)
		}
		_ = p.Close()
	})
	return p
}
