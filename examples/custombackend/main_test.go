package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/storage/storagetest"
	"gocloud.dev/blob"
)

// TestConformance runs Berth's blob-storage conformance suite against the
// custom driver: this is how a backend proves it is fit for a registry.
func TestConformance(t *testing.T) {
	storagetest.RunBlobTests(t, storagetest.BlobHarness{
		NewBucket: func(t *testing.T) *blob.Bucket {
			b := blob.NewBucket(&dirBucket{root: t.TempDir()})
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
	})
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `bytes 6-9: "from"`) {
		t.Fatalf("output %q", out.String())
	}
}
