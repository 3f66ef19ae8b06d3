package sqlmeta_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/opencontainers/go-digest"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlmeta-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// Open creates the database file and migrates its schema.
	meta, err := sqlmeta.Open(ctx, "sqlite://"+filepath.ToSlash(filepath.Join(dir, "meta.db")))
	if err != nil {
		log.Fatal(err)
	}
	defer meta.Close()

	// Record a blob; a second record of the same digest loses.
	b := &driver.Blob{
		Digest:    digest.FromString("hello"),
		Size:      5,
		Parts:     []driver.Part{{Key: "parts/1", Size: 5}},
		CreatedAt: time.Now(),
	}
	_, created, err := meta.PutBlob(ctx, b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first put created:", created)
	stored, created, err := meta.PutBlob(ctx, &driver.Blob{Digest: b.Digest, Size: 5, Parts: []driver.Part{{Key: "parts/2", Size: 5}}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("second put created:", created, "stored part:", stored.Parts[0].Key)
	// Output:
	// first put created: true
	// second put created: false stored part: parts/1
}
