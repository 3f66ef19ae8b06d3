package sqlmeta_test

import (
	"context"
	"errors"
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

func Example_immutableTags() {
	ctx := context.Background()
	meta, err := sqlmeta.Open(ctx, "sqlite://:memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer meta.Close()

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	repo := &driver.Repository{
		Name:                   "team/app",
		Visibility:             driver.Private,
		ImmutableTags:          true,
		ImmutableTagExclusions: []string{"latest", "dev-*"},
		CreatedAt:              now,
		UpdatedAt:              now,
	}
	// The event is written to the outbox in the same transaction.
	created := driver.Event{Type: "repository.created", Subject: repo.Name, CreatedAt: now}
	if err := meta.CreateRepository(ctx, repo, created); err != nil {
		log.Fatal(err)
	}
	v1 := &driver.Manifest{Repository: repo.Name, Digest: digest.FromString("v1"), MediaType: "application/vnd.oci.image.manifest.v1+json", PushedAt: now}
	v2 := &driver.Manifest{Repository: repo.Name, Digest: digest.FromString("v2"), MediaType: "application/vnd.oci.image.manifest.v1+json", PushedAt: now}
	for _, m := range []*driver.Manifest{v1, v2} {
		if _, err := meta.PutManifest(ctx, m); err != nil {
			log.Fatal(err)
		}
	}
	for _, tag := range []string{"1.0.0", "latest"} {
		if _, err := meta.SetTag(ctx, &driver.Tag{Repository: repo.Name, Name: tag, Digest: v1.Digest, UpdatedAt: now, UpdatedBy: "ci"}); err != nil {
			log.Fatal(err)
		}
	}
	for _, tag := range []string{"1.0.0", "latest"} {
		_, err := meta.SetTag(ctx, &driver.Tag{Repository: repo.Name, Name: tag, Digest: v2.Digest, UpdatedAt: now.Add(time.Hour), UpdatedBy: "ci"})
		fmt.Printf("move %s: immutable=%v\n", tag, errors.Is(err, driver.ErrAlreadyExists))
	}

	history, _, err := meta.ListTagHistory(ctx, repo.Name, "latest", 0, 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range history {
		fmt.Printf("latest: %.15s -> %.15s by %s\n", c.Old, c.New, c.By)
	}

	events, err := meta.ClaimEvents(ctx, now, time.Minute, 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("outbox:", events[0].Type, events[0].Subject)
	// Output:
	// move 1.0.0: immutable=true
	// move latest: immutable=false
	// latest:  -> sha256:3bfc2695 by ci
	// latest: sha256:3bfc2695 -> sha256:fb04dcb6 by ci
	// outbox: repository.created team/app
}
