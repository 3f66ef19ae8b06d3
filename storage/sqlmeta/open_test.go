package sqlmeta_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/sqlmeta"
)

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct{ url, want string }{
		{"mysql://x/y", "unsupported URL scheme"},
		{"sqlite://:memory:?cache=shared", `unknown query parameter "cache"`},
		{"sqlite:///tmp/x.db?journal=wal", `unknown query parameter "journal"`},
		{"sqlite://", "names no file"},
		{"sqlite://u:secret@/tmp/x.db", "must not carry user information"},
		{"postgres://u:secret@127.0.0.1:1/db?pool_max_conns=3", `unknown query parameter "pool_max_conns"`},
		{"postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=1", "connect to"},
		{"postgres://u:secret@[::1/db", "malformed URL"},
	} {
		m, err := sqlmeta.Open(ctx, tc.url)
		if err == nil {
			m.Close()
			t.Errorf("Open(%q) succeeded", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error reveals the password: %v", tc.url, err)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	got := sqlmeta.Redact("postgres://berth:s3cret@db:5432/meta")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "berth:") {
		t.Errorf("Redact = %q", got)
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	m := openT(t, "sqlite://:memory:")
	defer m.Close()
	if got := m.String(); got != "sqlite://:memory:" {
		t.Errorf("String = %q", got)
	}
	var db *sql.DB
	if !m.As(&db) || db == nil {
		t.Error("As(**sql.DB) = false")
	}
	if m.As(nil) {
		t.Error("As(nil) = true")
	}
	var s string
	if m.As(&s) {
		t.Error("As(*string) = true")
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	u := &sqlmeta.URLOpener{Options: sqlmeta.Options{MaxConns: -1}}
	if _, err := u.OpenMetadataURL(context.Background(), mustURL(t, "sqlite://:memory:")); err == nil {
		t.Error("negative MaxConns accepted")
	}
}

// TestConcurrentMigration opens one fresh database from several goroutines
// at once, as nodes starting together do: every Open must succeed and the
// schema must be migrated exactly once.
func TestConcurrentMigration(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		testConcurrentMigration(t, sqliteFileURL(t))
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		testConcurrentMigration(t, postgresURL(t))
	})
}

func testConcurrentMigration(t *testing.T, url string) {
	const n = 4
	ms := make([]*sqlmeta.Metadata, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ms[i], errs[i] = sqlmeta.Open(context.Background(), url) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Open: %v", err)
	}
	for _, m := range ms {
		defer m.Close()
	}
	var db *sql.DB
	ms[0].As(&db)
	var rows, versions int
	if err := db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT version) FROM berth_schema_migrations").Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != versions {
		t.Errorf("berth_schema_migrations has %d rows for %d versions, want each version once", rows, versions)
	}
	// Reopening finds nothing to do.
	m := openT(t, url)
	m.Close()
}

func TestDefaultMux(t *testing.T) {
	t.Parallel()
	m, err := driver.DefaultMetadataURLMux().OpenMetadata(context.Background(), "sqlite://:memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, ok := m.(*sqlmeta.Metadata); !ok {
		t.Errorf("sqlite:// opened %T", m)
	}
	for _, s := range []string{sqlmeta.SchemeSQLite, sqlmeta.SchemePostgres, sqlmeta.SchemePostgreSQL} {
		if !slices.Contains(driver.DefaultMetadataURLMux().MetadataSchemes(), s) {
			t.Errorf("scheme %q not registered", s)
		}
	}
}

func TestSQLiteFileMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new", "dir", "meta.db")
	m := openT(t, "sqlite://"+filepath.ToSlash(path))
	defer m.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode = %v, want 0600", fi.Mode().Perm())
	}
	if !strings.HasSuffix(m.String(), "/new/dir/meta.db") {
		t.Errorf("String = %q", m.String())
	}
}

func TestPostgresStringRedacted(t *testing.T) {
	t.Parallel()
	raw := postgresURL(t)
	u := mustURL(t, raw)
	pw, ok := u.User.Password()
	m := openT(t, raw)
	defer m.Close()
	if ok && pw != "" && strings.Contains(m.String(), ":"+pw+"@") {
		t.Errorf("String reveals the password: %q", m.String())
	}
	if !strings.HasPrefix(m.String(), "postgres") {
		t.Errorf("String = %q", m.String())
	}
}
