package sqlmeta_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/depcheck"
)

// TestImports is the dependency fence: the SQL backend depends on the
// driver interfaces and its database drivers only, never on the registry,
// the portable storage package or another backend.
func TestImports(t *testing.T) {
	depcheck.Check(t, depcheck.Module+"/storage/sqlmeta", depcheck.Rules{
		Internal: []string{depcheck.Module + "/storage/driver", depcheck.Module + "/internal/errcode"},
		External: []string{"github.com/opencontainers/go-digest", "github.com/jackc/pgx/v5", "modernc.org/sqlite"},
	})
}
