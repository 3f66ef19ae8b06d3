package pullthrough_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/depcheck"
)

// TestDependencyFence keeps the cache independent of the backends a
// server chooses.
func TestDependencyFence(t *testing.T) {
	depcheck.Check(t, depcheck.Module+"/registry/pullthrough", depcheck.Rules{
		Forbidden: []string{
			depcheck.Module + "/storage/sqlmeta", depcheck.Module + "/storage/memmeta",
			"modernc.org/sqlite", "github.com/jackc/pgx",
			"gocloud.dev/blob/s3blob", "gocloud.dev/blob/gcsblob", "gocloud.dev/blob/azureblob",
		},
	})
}
