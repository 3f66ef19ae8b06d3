package version

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

func runOrderFile(t *testing.T, file string, cmp func(a, b string) int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		fs := strings.Fields(s)
		if len(fs) != 3 {
			t.Fatalf("%s:%d: want \"a OP b\"", file, line)
		}
		want := map[string]int{"<": -1, "=": 0, ">": 1}[fs[1]]
		if got := cmp(fs[0], fs[2]); got != want {
			t.Errorf("%s:%d: compare(%q, %q) = %d, want %d", file, line, fs[0], fs[2], got, want)
		}
		if got := cmp(fs[2], fs[0]); got != -want {
			t.Errorf("%s:%d: compare(%q, %q) = %d, want %d (antisymmetry)", file, line, fs[2], fs[0], got, -want)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("%s: no cases", file)
	}
}

func TestDpkg(t *testing.T)   { runOrderFile(t, "testdata/dpkg.txt", Dpkg) }
func TestApk(t *testing.T)    { runOrderFile(t, "testdata/apk.txt", Apk) }
func TestSemver(t *testing.T) { runOrderFile(t, "testdata/semver.txt", Semver) }
func TestPEP440(t *testing.T) { runOrderFile(t, "testdata/pep440.txt", PEP440) }
func TestRPM(t *testing.T)    { runOrderFile(t, "testdata/rpm.txt", RPM) }

func TestComparerFor(t *testing.T) {
	for eco, want := range map[string]string{
		"Debian:12": "dpkg", "Ubuntu:22.04:LTS": "dpkg", "Alpine:v3.19": "apk", "PyPI": "pep440", "Go": "semver", "npm": "semver", "Rocky Linux:9": "rpm", "AlmaLinux:9": "rpm",
	} {
		c := ComparerFor(eco)
		// Distinguish the comparers by a pair they order differently.
		var got string
		switch {
		case c("1.0a1", "1.0") < 0 && c("1.0.dev1", "1.0a1") < 0:
			got = "pep440"
		case c("1.0~rc1", "1.0") < 0 && c("1.0^git1", "1.0.1") < 0:
			got = "rpm"
		case c("1.0~rc1", "1.0") < 0:
			got = "dpkg"
		case c("1.0_rc1", "1.0") < 0:
			got = "apk"
		default:
			got = "semver"
		}
		if got != want {
			t.Errorf("ComparerFor(%q) behaves like %s, want %s", eco, got, want)
		}
	}
}

func TestValid(t *testing.T) {
	if !DpkgValid("1:2.36-9+deb12u3") || DpkgValid("x1.0") {
		t.Error("DpkgValid")
	}
	if !ApkValid("1.2.3_rc1-r0") || ApkValid("1.2.3-x") {
		t.Error("ApkValid")
	}
	if !SemverValid("v1.2.3-rc.1") || SemverValid("1.2") {
		t.Error("SemverValid")
	}
	if !PEP440Valid("1.0.post1") || PEP440Valid("1.0-foo-bar") {
		t.Error("PEP440Valid")
	}
	if got := NormalizePyPIName("Foo__Bar.baz"); got != "foo-bar-baz" {
		t.Errorf("NormalizePyPIName = %q", got)
	}
}

func FuzzCompare(f *testing.F) {
	for _, s := range []string{"1.0", "1:2.3-4~5", "1.0_rc1-r2", "1!2.0a1.post3.dev4+x.5", "v1.2.3-beta.1+b"} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, c := range []func(a, b string) int{Dpkg, Apk, Semver, PEP440, RPM} {
			if c(a, b) != -c(b, a) {
				t.Fatalf("not antisymmetric on %q, %q", a, b)
			}
			if c(a, a) != 0 {
				t.Fatalf("not reflexive on %q", a)
			}
		}
	})
}
