package auth_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyFence keeps the auth packages (not their tests) free of the
// registry and of storage backends: they depend on storage/driver's
// interfaces only, so that any backend can serve them.
func TestDependencyFence(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/berth-dev/berth/auth/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/berth-dev/berth/"
	allowed := []string{mod + "auth", mod + "internal/errcode", mod + "internal/ociname", mod + "storage/driver"}
	forbidden := []string{"gocloud.dev/", "modernc.org/sqlite", "github.com/jackc/pgx"}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, mod) {
			ok := false
			for _, a := range allowed {
				if p == a || strings.HasPrefix(p, a+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("auth depends on %s", p)
			}
		}
		for _, f := range forbidden {
			if strings.HasPrefix(p, f) {
				t.Errorf("auth depends on %s", p)
			}
		}
	}
}
