package storage_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/storage/storagetest"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
)

// TestAzureBlob and TestGCSBlob run the suite against Azurite and
// fake-gcs-server (see .ci/services).
func TestAzureBlob(t *testing.T) { runCloud(t, testsvc.EnvAzure) }

func TestGCSBlob(t *testing.T) { runCloud(t, testsvc.EnvGCS) }

func runCloud(t *testing.T, env string) {
	testsvc.URL(t, env) // skip (or fail under CI) before the suite starts
	storagetest.RunBlobTests(t, storagetest.BlobHarness{
		NewBucket: func(t *testing.T) *blob.Bucket { return testsvc.Bucket(t, env) },
	})
}
