package scan_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/depcheck"
)

// TestImports is the dependency fence of scan and its subpackages: within
// Berth they depend only on cvss and the storage driver interfaces (never
// on the registry, the portable storage package or a backend), and they
// import only these third-party modules directly.
func TestImports(t *testing.T) {
	depcheck.Check(t, depcheck.Module+"/scan/...", depcheck.Rules{
		Internal: []string{depcheck.Module + "/cvss", depcheck.Module + "/storage/driver", depcheck.Module + "/internal/errcode",
			depcheck.Module + "/internal/ociname"}, // scan/scanapi validates repository names
		External: []string{"github.com/google/go-containerregistry", "github.com/package-url/packageurl-go", "github.com/opencontainers/go-digest",
			"modernc.org/sqlite"}, // scan/native reads rpmdb.sqlite
	})
}
