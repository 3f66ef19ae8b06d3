package manage_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/depcheck"
)

// TestDependencyFence keeps the management API transport only, like the
// registry: no metadata backend, cloud driver or OpenAPI library (the
// validator is a test dependency) in the package.
func TestDependencyFence(t *testing.T) {
	depcheck.Check(t, depcheck.Module+"/registry/manage", depcheck.Rules{
		Forbidden: []string{
			depcheck.Module + "/storage/sqlmeta", depcheck.Module + "/storage/memmeta",
			"modernc.org/sqlite", "github.com/jackc/pgx", "github.com/getkin/kin-openapi",
			"gocloud.dev/blob/s3blob", "gocloud.dev/blob/gcsblob", "gocloud.dev/blob/azureblob",
		},
	})
}
