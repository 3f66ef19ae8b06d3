package sqlmeta_test

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/berth-dev/berth/storage/storagetest"
)

// TestScanJobClaimNodes claims scan jobs from several Opens of one
// database, as several registry nodes do: every job is claimed exactly
// once.
func TestScanJobClaimNodes(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		testScanJobClaimNodes(t, sqliteFileURL(t), 3)
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		testScanJobClaimNodes(t, postgresSchemaURL(t, postgresURL(t)), 4)
	})
}

func testScanJobClaimNodes(t *testing.T, url string, nodes int) {
	opener := &sqlmeta.URLOpener{Options: sqlmeta.Options{MaxConns: 2}}
	var handles []driver.ScanJobs
	for range nodes {
		m, err := opener.OpenMetadataURL(context.Background(), mustURL(t, url))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		handles = append(handles, m.(*sqlmeta.Metadata))
	}
	storagetest.ScanJobClaimRace(t, handles, 90)
}
