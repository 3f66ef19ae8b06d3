package lifecycle_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports is the dependency fence: outside its tests the package
// imports the standard library, the storage driver interfaces and these
// modules only — never the registry, the portable storage package or a
// backend, so that the server wires it and not the other way round.
func TestImports(t *testing.T) {
	allowed := []string{
		"github.com/berth-dev/berth/storage/driver",
		"github.com/berth-dev/berth/internal/errcode",
		"github.com/berth-dev/berth/internal/ociname",
		"github.com/opencontainers/go-digest",
	}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
	imports:
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); !strings.Contains(first, ".") {
				continue // standard library
			}
			for _, a := range allowed {
				if p == a {
					continue imports
				}
			}
			t.Errorf("%s imports %s, outside the allowed dependencies %v", f, p, allowed)
		}
	}
}
