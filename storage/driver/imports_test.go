package driver_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/depcheck"
)

// TestImports is the dependency fence: the driver interfaces depend on
// nothing of Berth's but the error codes, so that any backend can
// implement them without pulling in the rest.
func TestImports(t *testing.T) {
	depcheck.Check(t, depcheck.Module+"/storage/driver", depcheck.Rules{
		Internal: []string{depcheck.Module + "/internal/errcode"},
		External: []string{"github.com/opencontainers/go-digest"},
	})
}
