// Command custombackend shows how to plug a storage backend of your own into
// Berth: a gocloud.dev blob driver (here, a durable directory store that
// fsyncs every object and its directory, which gocloud's fileblob does not)
// wrapped with blob.NewBucket and handed to storage.New. The same
// conformance suite that Berth's own backends pass proves it correct: see
// main_test.go.
//
// Run it with:
//
//	go run ./examples/custombackend
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/memmeta"
	"gocloud.dev/blob"
	"gocloud.dev/secrets/localsecrets"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	dir, err := os.MkdirTemp("", "berth-custombackend-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bucket := blob.NewBucket(&dirBucket{root: dir})
	defer bucket.Close()

	key, err := localsecrets.NewRandomKey()
	if err != nil {
		return err
	}
	store, err := storage.New(bucket, memmeta.New(), &storage.Options{Keeper: localsecrets.NewKeeper(key)})
	if err != nil {
		return err
	}
	defer store.Close()

	content := []byte("hello from a custom backend")
	d, err := store.PutBlob(ctx, bytes.NewReader(content), storage.Descriptor{Size: int64(len(content))})
	if err != nil {
		return err
	}
	r, err := store.OpenBlob(ctx, d.Digest, 6, 4)
	if err != nil {
		return err
	}
	defer r.Close()
	part, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "stored %s (%d bytes), bytes 6-9: %q\n", d.Digest, d.Size, part)
	return nil
}
