package sqlmeta_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/berth-dev/berth/storage/storagetest"
)

func openT(t *testing.T, url string) *sqlmeta.Metadata {
	t.Helper()
	m, err := sqlmeta.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m
}

func sqliteFileURL(t *testing.T) string {
	return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "meta.db"))
}

func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	storagetest.RunMetadataTests(t, func(t *testing.T) driver.Metadata {
		return openT(t, sqliteFileURL(t))
	})
}

func TestConformanceSQLiteMemory(t *testing.T) {
	t.Parallel()
	storagetest.RunMetadataTests(t, func(t *testing.T) driver.Metadata {
		return openT(t, "sqlite://:memory:")
	})
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	db := postgresURL(t)
	storagetest.RunMetadataTests(t, func(t *testing.T) driver.Metadata {
		// Four connections per backend keep parallel subtests within
		// PostgreSQL's default connection limit.
		m, err := (&sqlmeta.URLOpener{Options: sqlmeta.Options{MaxConns: 4}}).OpenMetadataURL(context.Background(), mustURL(t, postgresSchemaURL(t, db)))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return m
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
