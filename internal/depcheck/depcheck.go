// Package depcheck enforces dependency fences in tests: which Berth
// packages a package may depend on, which third-party modules it may
// import, and which dependencies it must never reach (a backend in the
// registry, a cloud SDK in a driver-agnostic package).
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// Module is Berth's module path.
const Module = "github.com/berth-dev/berth"

// Rules is a fence. Entries are package or module paths; each also covers
// the packages below it.
type Rules struct {
	// Internal lists the Berth packages the checked packages may depend on,
	// directly or not (the checked packages themselves always may).
	// Nil allows any.
	Internal []string
	// External lists the third-party modules the checked packages may
	// import directly. Nil allows any; an empty, non-nil slice allows the
	// standard library only.
	External []string
	// Forbidden lists packages that must not be dependencies at all.
	Forbidden []string
}

func covers(list []string, p string) bool {
	for _, a := range list {
		if p == a || strings.HasPrefix(p, a+"/") {
			return true
		}
	}
	return false
}

func isStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

// Check runs `go list` on pattern (for example "github.com/berth-dev/berth/scan/...")
// and reports every package that breaks the rules. Test files are not
// checked.
func Check(t testing.TB, pattern string, r Rules) {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", pattern).Output()
	if err != nil {
		t.Fatalf("depcheck: go list %s: %v", pattern, err)
	}
	self := strings.TrimSuffix(pattern, "/...")
	n := 0
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		parts := strings.Split(strings.TrimSpace(line), "|")
		if len(parts) != 3 {
			continue
		}
		n++
		pkg, imports, deps := parts[0], strings.Fields(parts[1]), strings.Fields(parts[2])
		for _, d := range deps {
			if r.Internal != nil && covers([]string{Module}, d) && !covers(r.Internal, d) && !covers([]string{self}, d) {
				t.Errorf("%s depends on %s, outside %v", pkg, d, r.Internal)
			}
			if covers(r.Forbidden, d) {
				t.Errorf("%s depends on forbidden %s", pkg, d)
			}
		}
		if r.External == nil {
			continue
		}
		for _, imp := range imports {
			if !isStd(imp) && !covers([]string{Module}, imp) && !covers(r.External, imp) {
				t.Errorf("%s imports %s, outside %v", pkg, imp, r.External)
			}
		}
	}
	if n == 0 {
		t.Fatalf("depcheck: go list %s matched no packages", pattern)
	}
}
