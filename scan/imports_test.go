package scan_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports is the dependency fence of scan and its subpackages: within
// Berth they depend only on cvss and the storage driver interfaces (never
// on the registry, the portable storage package or a backend), and they
// import only these third-party modules directly.
func TestImports(t *testing.T) {
	const mod = "github.com/berth-dev/berth/"
	internal := []string{mod + "scan", mod + "cvss", mod + "storage/driver", mod + "internal/errcode"}
	external := []string{"github.com/google/go-containerregistry", "github.com/package-url/packageurl-go", "github.com/opencontainers/go-digest",
		"modernc.org/sqlite"} // scan/native reads rpmdb.sqlite

	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", "./...").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	has := func(list []string, p string) bool {
		for _, a := range list {
			if p == a || strings.HasPrefix(p, a+"/") {
				return true
			}
		}
		return false
	}
	lines := strings.Count(string(out), "\n")
	if lines < 8 {
		t.Fatalf("go list found %d packages; expected scan and its subpackages", lines)
	}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		parts := strings.Split(strings.TrimSpace(line), "|")
		pkg, imports, deps := parts[0], strings.Fields(parts[1]), strings.Fields(parts[2])
		for _, d := range deps {
			if strings.HasPrefix(d, mod) && !has(internal, d) {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
		for _, imp := range imports {
			first, _, _ := strings.Cut(imp, "/")
			if strings.Contains(first, ".") && !strings.HasPrefix(imp, mod) && !has(external, imp) {
				t.Errorf("%s imports %s, outside %v", pkg, imp, external)
			}
		}
	}
}
