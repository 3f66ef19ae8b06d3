package lifecycle_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/depcheck"
)

// TestImports is the dependency fence: lifecycle depends on the storage
// driver interfaces only — never the registry, the portable storage
// package or a backend — so that the server wires it and not the other way
// round.
func TestImports(t *testing.T) {
	depcheck.Check(t, depcheck.Module+"/lifecycle/...", depcheck.Rules{
		Internal: []string{
			depcheck.Module + "/storage/driver",
			depcheck.Module + "/internal/errcode",
			depcheck.Module + "/internal/ociname",
		},
		External: []string{"github.com/opencontainers/go-digest"},
	})
}
