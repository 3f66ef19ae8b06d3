package auth_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/depcheck"
)

// TestDependencyFence keeps the auth packages (not their tests) free of the
// registry and of storage backends: they depend on storage/driver's
// interfaces only, so that any backend can serve them.
func TestDependencyFence(t *testing.T) {
	depcheck.Check(t, depcheck.Module+"/auth/...", depcheck.Rules{
		Internal:  []string{depcheck.Module + "/internal/errcode", depcheck.Module + "/internal/ociname", depcheck.Module + "/storage/driver"},
		Forbidden: []string{"gocloud.dev", "modernc.org/sqlite", "github.com/jackc/pgx"},
	})
}
