package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/opencontainers/go-digest"
)

// A store over a directory, with its key-encryption key in a local file.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "berth-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	keeper, keyID, err := storage.LoadOrCreateKeyFile(filepath.Join(dir, "kek"))
	if err != nil {
		log.Fatal(err)
	}
	meta := memmeta.New() // storage/sqlmeta for SQLite or PostgreSQL
	s, err := storage.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(dir, "blobs")), meta, &storage.Options{Keeper: keeper, KeyID: keyID})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	content := []byte("layer bytes")
	d, err := s.PutBlob(ctx, bytes.NewReader(content), storage.Descriptor{Digest: digest.FromBytes(content), Size: int64(len(content))})
	if err != nil {
		log.Fatal(err)
	}
	r, err := s.OpenBlob(ctx, d.Digest, 6, -1) // bytes 6 to the end
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	rest, _ := io.ReadAll(r)
	fmt.Println(d.Size, string(rest))
	// Output: 11 bytes
}

// A chunked upload, resumed by its ID as any registry node sharing the
// bucket and the metadata backend can.
func ExampleStore_StartUpload() {
	ctx := context.Background()
	meta := memmeta.New()
	s, _ := storage.Open(ctx, "mem://", meta, &storage.Options{DisableEncryption: true})
	defer s.Close()

	up, err := s.StartUpload(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := up.Append(ctx, 0, strings.NewReader("hello, "), -1); err != nil {
		log.Fatal(err)
	}

	// Later, possibly in another process: resume by ID and finish.
	same, err := s.ResumeUpload(ctx, up.ID())
	if err != nil {
		log.Fatal(err)
	}
	d, err := same.Commit(ctx, digest.FromString("hello, world"), strings.NewReader("world"), 5)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Digest == digest.FromString("hello, world"), d.Size)
	// Output: true 12
}
