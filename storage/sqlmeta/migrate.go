package sqlmeta

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationsFS holds the schema migrations, one directory per dialect.
// Each file is named NNNN_description.sql; versions are applied in
// increasing order, each exactly once, and never edited once released.
//
//go:embed migrations
var migrationsFS embed.FS

type migration struct {
	version int64
	name    string
	sql     string
}

func loadMigrations(d dialect) ([]migration, error) {
	dir := "migrations/" + d.String()
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("sqlmeta: migration %s: name must be NNNN_description.sql", name)
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlmeta: migration %s: bad version", name)
		}
		b, err := fs.ReadFile(migrationsFS, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return int(a.version - b.version) })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("sqlmeta: migrations %s and %s share a version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// migrate brings the schema up to date in one transaction. Concurrent
// callers (several nodes starting at once) serialise: on PostgreSQL on a
// transaction-scoped advisory lock, on SQLite on the database's write lock
// taken by BEGIN IMMEDIATE. The loser then finds the work done.
func (m *Metadata) migrate(ctx context.Context) error { return m.migrateTo(ctx, -1) }

// migrateTo applies the migrations up to version target (all when target
// is negative); tests use it to build databases of older releases.
func (m *Metadata) migrateTo(ctx context.Context, target int64) error {
	ms, err := loadMigrations(m.dialect)
	if err != nil {
		return err
	}
	if target >= 0 {
		ms = slices.DeleteFunc(ms, func(mg migration) bool { return mg.version > target })
	}
	err = m.tx(ctx, func(tx *sql.Tx) error {
		if m.dialect == dialectPostgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(defaultMigrationLockKey)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS berth_schema_migrations (
    version    BIGINT NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)`); err != nil {
			return err
		}
		var current int64
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM berth_schema_migrations").Scan(&current); err != nil {
			return err
		}
		if len(ms) > 0 && current > ms[len(ms)-1].version && target < 0 {
			return fmt.Errorf("schema version %d is newer than this release supports (%d)", current, ms[len(ms)-1].version)
		}
		for _, mg := range ms {
			if mg.version <= current {
				continue
			}
			if _, err := tx.ExecContext(ctx, mg.sql); err != nil {
				return fmt.Errorf("apply %s: %w", mg.name, err)
			}
			if _, err := tx.ExecContext(ctx, m.q("INSERT INTO berth_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
				mg.version, mg.name, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("record %s: %w", mg.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlmeta: migrate %s schema: %w", m.dialect, err)
	}
	return nil
}
