package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"gocloud.dev/blob"
)

// TestWritebackFileBucket checks that file:// buckets expose the file being
// written, so that its writeback starts while it is written, and that
// writeback is started every writebackChunk bytes.
func TestWritebackFileBucket(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blobs")
	b, sync, err := OpenBucket(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if sync == nil {
		t.Fatal("file:// buckets need a sync function")
	}
	wb := &writeback{}
	p := newChunkPipe(func() *[]byte { x := make([]byte, 1<<20); return &x }, func(*[]byte) {})
	p.wrote = wb.wrote
	content := bytes.Repeat([]byte("0123456789abcdef"), (2*writebackChunk+1<<20)/16)
	go func() {
		_, _ = p.Write(content)
		_ = p.Close()
	}()
	if err := b.Upload(ctx, "blobs/aa/obj", p, &blob.WriterOptions{ContentType: "application/octet-stream", BeforeWrite: wb.beforeWrite}); err != nil {
		t.Fatal(err)
	}
	if wb.f == nil {
		t.Fatal("the file bucket did not expose the file it writes: writeback never starts early")
	}
	if wb.started != 2*writebackChunk || wb.pending != 1<<20 {
		t.Errorf("writeback started for %d bytes, %d pending; want %d and %d", wb.started, wb.pending, 2*writebackChunk, 1<<20)
	}
	if err := sync(ctx, "blobs/aa/obj"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "blobs", "aa", "obj"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("stored %d bytes (%v), want the %d written", len(got), err, len(content))
	}

	// Buckets that are not local files expose none: nothing happens.
	none := &writeback{}
	if err := none.beforeWrite(func(any) bool { return false }); err != nil || none.f != nil {
		t.Fatal(err)
	}
	none.wrote(3 * writebackChunk)
	if none.started != 0 || none.pending != 0 {
		t.Errorf("writeback without a file: started %d, pending %d", none.started, none.pending)
	}
}
