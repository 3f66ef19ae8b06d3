package sqlmeta_test

import (
	"context"
	"sync"
	"testing"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/berth-dev/berth/storage/storagetest"
)

// TestImmutableRaceNodes races 32 writers of one immutable tag, as 32
// registry nodes would: exactly one may win. On PostgreSQL each writer has
// its own Open of the database; on SQLite, where nodes are processes
// sharing a file, 8 Opens serve 4 writers each (32 Opens would mostly
// measure SQLite's busy-wait back-off).
func TestImmutableRaceNodes(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		testImmutableRaceNodes(t, sqliteFileURL(t), 8)
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		testImmutableRaceNodes(t, postgresURL(t), 32)
	})
}

func testImmutableRaceNodes(t *testing.T, url string, nodes int) {
	const n = 32
	ctx := context.Background()
	// One connection per node (all a SetTag needs) keeps 32 nodes well
	// within PostgreSQL's default connection limit.
	opener := &sqlmeta.URLOpener{Options: sqlmeta.Options{MaxConns: 1}}
	handles := make([]driver.Tags, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			m, err := opener.OpenMetadataURL(ctx, mustURL(t, url))
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			t.Cleanup(func() { m.Close() })
			handles[i] = m.(*sqlmeta.Metadata)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	m := handles[0].(*sqlmeta.Metadata)
	r := &driver.Repository{Name: "race", Visibility: driver.Private, ImmutableTags: true, ImmutableTagExclusions: []string{"latest"}}
	if err := m.CreateRepository(ctx, r); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := m.PutManifest(ctx, storagetest.ImmutableRaceManifest("race", i)); err != nil {
			t.Fatal(err)
		}
	}
	storagetest.ImmutableRace(t, handles, "race", n)
}
