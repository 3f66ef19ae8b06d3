package sqlmeta

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// TestUpgrade opens a database that a release with only the first
// migration created, with data in it, and checks that Open brings the
// schema up to date and keeps the data; then that a database migrated
// beyond this release is refused.
func TestUpgrade(t *testing.T) {
	ctx := context.Background()
	url := "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "v1.db"))
	// Turn a current database into a version 1 one: drop everything and
	// apply the first migration only.
	m, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"berth_schema_migrations", "scan_jobs", "outbox", "tokens", "scan_results", "policies", "blob_links", "tag_history",
		"tags", "manifest_children", "manifest_blobs", "manifests", "repositories", "uploads", "blobs"} {
		if _, err := m.w.ExecContext(ctx, "DROP TABLE "+tbl); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.migrateTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	b := &driver.Blob{Digest: digest.FromString("kept"), Size: 4, CreatedAt: time.Unix(1, 0)}
	if _, _, err := m.PutBlob(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetRepository(ctx, "x"); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("version 1 schema has repositories: %v", err)
	}
	m.Close()

	up, err := Open(ctx, url)
	if err != nil {
		t.Fatalf("Open of a version 1 database: %v", err)
	}
	if _, err := up.GetBlob(ctx, b.Digest); err != nil {
		t.Errorf("blob lost in the upgrade: %v", err)
	}
	if err := up.CreateRepository(ctx, &driver.Repository{Name: "x", Visibility: driver.Private}); err != nil {
		t.Errorf("upgraded schema: %v", err)
	}
	var versions int
	if err := up.w.QueryRowContext(ctx, "SELECT COUNT(*) FROM berth_schema_migrations").Scan(&versions); err != nil {
		t.Fatal(err)
	}
	ms, _ := loadMigrations(dialectSQLite)
	if versions != len(ms) {
		t.Errorf("%d versions recorded, want %d", versions, len(ms))
	}
	if _, err := up.w.ExecContext(ctx, "INSERT INTO berth_schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)"); err != nil {
		t.Fatal(err)
	}
	up.Close()
	if m, err := Open(ctx, url); err == nil || !strings.Contains(err.Error(), "newer than this release supports") {
		if m != nil {
			m.Close()
		}
		t.Errorf("Open of a database from a newer release: %v", err)
	}
}

func TestMigrationFiles(t *testing.T) {
	for _, d := range []dialect{dialectSQLite, dialectPostgres} {
		ms, err := loadMigrations(d)
		if err != nil {
			t.Fatal(err)
		}
		for i, mg := range ms {
			if mg.version != int64(i+1) {
				t.Errorf("%s migration %s: version %d, want %d (no gaps)", d, mg.name, mg.version, i+1)
			}
		}
		other, _ := loadMigrations(1 - d)
		if len(ms) != len(other) {
			t.Errorf("%s has %d migrations, the other dialect %d", d, len(ms), len(other))
		}
	}
}
