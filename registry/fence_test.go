package registry_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/depcheck"
)

// TestDependencyFence keeps the registry transport-only: it never depends
// on a metadata backend or a cloud driver, which the server chooses.
func TestDependencyFence(t *testing.T) {
	depcheck.Check(t, depcheck.Module+"/registry", depcheck.Rules{
		Forbidden: []string{
			depcheck.Module + "/storage/sqlmeta", depcheck.Module + "/storage/memmeta",
			"modernc.org/sqlite", "github.com/jackc/pgx",
			"gocloud.dev/blob/s3blob", "gocloud.dev/blob/gcsblob", "gocloud.dev/blob/azureblob",
		},
	})
}
