package memmeta_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/depcheck"
)

// TestImports is the dependency fence: the fake depends on the driver
// interfaces only, never on the registry, the portable storage package or
// another backend.
func TestImports(t *testing.T) {
	depcheck.Check(t, depcheck.Module+"/storage/memmeta", depcheck.Rules{
		Internal: []string{depcheck.Module + "/storage/driver", depcheck.Module + "/internal/errcode"},
		External: []string{"github.com/opencontainers/go-digest"},
	})
}
