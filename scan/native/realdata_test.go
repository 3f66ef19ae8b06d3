package native_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/native"
	"github.com/berth-dev/berth/scan/scantest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The installed versions testdata/README.md was written against.
var wantInstalled = map[string]string{
	"libc6":   "2.36-9+deb12u14",
	"libssl3": "3.0.19-1~deb12u2",
	"tar":     "1.34+dfsg-1.2+deb12u1",
}

var (
	goBinOnce sync.Once
	goBin     []byte
	goBinErr  error
)

// buildGoBinary builds testdata/gobin with the go command running the
// tests, once per test binary.
func buildGoBinary(t testing.TB) []byte {
	t.Helper()
	goBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gobin")
		if err != nil {
			goBinErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "gobin")
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/gobin")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false -mod=mod", "GOPROXY=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			goBinErr = &buildError{err: err, out: string(b)}
			return
		}
		goBin, goBinErr = os.ReadFile(out)
	})
	if goBinErr != nil {
		t.Fatalf("building testdata/gobin: %v", goBinErr)
	}
	return goBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// realImage is an image of this machine's dpkg database and os-release
// plus a freshly built Go binary, in two layers.
func realImage(t testing.TB) v1.Image {
	t.Helper()
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("real-data test needs a Debian host: %v", err)
		}
		t.Skipf("real-data test needs a Debian host: %v", err)
	}
	for pkg, want := range wantInstalled {
		if !strings.Contains(string(status), "Package: "+pkg+"\n") || !containsStanza(string(status), pkg, want) {
			t.Skipf("this host's %s is not %s, the version testdata/README.md was written for", pkg, want)
		}
	}
	return image(t,
		layer(t,
			file{Name: "etc/os-release", Body: readFile(t, "/etc/os-release")},
			file{Name: "var/lib/dpkg/status", Body: status},
		),
		layer(t, file{Name: "usr/local/bin/gobin", Body: buildGoBinary(t), Mode: 0o755}),
	)
}

func containsStanza(status, pkg, version string) bool {
	for st := range strings.SplitSeq(status, "\n\n") {
		if strings.HasPrefix(st, "Package: "+pkg+"\n") {
			return strings.Contains(st, "\nVersion: "+version+"\n")
		}
	}
	return false
}

func realScanner(t testing.TB) *native.Scanner {
	t.Helper()
	db, err := native.LoadDB("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	return newScanner(t, db)
}

func TestRealData(t *testing.T) {
	s := realScanner(t)
	img := realImage(t)
	r, err := s.Scan(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != scan.StatusSucceeded || r.OS != "debian 12" {
		t.Fatalf("status %s (%s), os %q", r.Status, r.Reason, r.OS)
	}
	got := map[string]scan.Vulnerability{}
	for _, v := range r.Vulnerabilities {
		got[v.ID+" "+v.Package.Name] = v
		t.Logf("%-22s %-20s %-24s fixed %-18s %-8s %4.1f %v", v.ID, v.Package.Name, v.Package.Version, v.FixedVersion, v.Severity, v.Score, v.Aliases)
	}

	// Affected, no fix: tar.
	if v, ok := got["CVE-2005-2541 tar"]; !ok || v.Fixable || v.Severity != scan.SeverityCritical || v.Score != 10 ||
		!slices.Equal(v.Aliases, []string{"DEBIAN-CVE-2005-2541"}) {
		t.Errorf("tar: %+v", v)
	}
	// Affected with a fix, matched by source package (openssl) on each
	// binary package, the fix ordered by the ~ rule.
	for _, bin := range []string{"libssl3", "openssl"} {
		v, ok := got["CVE-2099-0001 "+bin]
		if !ok {
			t.Errorf("%s: CVE-2099-0001 missing", bin)
			continue
		}
		if v.FixedVersion != "3.0.19-1~deb12u3" || !v.Fixable || (bin == "libssl3") != (v.Package.SourceName == "openssl") || v.Package.Ecosystem != "Debian:12" ||
			!strings.HasPrefix(v.Package.PURL, "pkg:deb/debian/"+bin+"@3.0.19-1~deb12u2?arch=") {
			t.Errorf("%s: %+v", bin, v)
		}
		if len(v.Ratings) != 2 || v.Ratings[0].Version != "4.0" || v.SeveritySource != "berth" {
			t.Errorf("%s ratings: %+v", bin, v.Ratings)
		}
	}
	// Go stdlib of the binary: GO/GHSA twins merged into one finding, the
	// GHSA vector winning.
	if v, ok := got["BERTH-TEST-GO-0001 stdlib"]; !ok || v.FixedVersion != "1.26.99" || v.Severity != scan.SeverityHigh ||
		v.SeveritySource != "ghsa" || !slices.Equal(v.Aliases, []string{"GHSA-test-berth-0001"}) ||
		v.Package.Location != "/usr/local/bin/gobin" || !strings.HasPrefix(v.Package.PURL, "pkg:golang/stdlib@v1.26.") {
		t.Errorf("stdlib: %+v", v)
	}
	// A module from the binary's build info.
	if v, ok := got["BERTH-TEST-GO-0002 golang.org/x/sync"]; !ok || v.FixedVersion != "0.99.0" ||
		v.Package.PURL != "pkg:golang/golang.org/x/sync@v0.24.0" {
		t.Errorf("x/sync: %+v", v)
	}
	// Not affected: fixed before the installed version, or at it.
	for _, id := range []string{"CVE-2023-4911", "CVE-2026-31789", "DEBIAN-CVE-2023-4911", "GO-2024-2687", "CVE-2023-45288", "BERTH-TEST-WITHDRAWN"} {
		for k := range got {
			if strings.HasPrefix(k, id+" ") {
				t.Errorf("%s reported: %+v", id, got[k])
			}
		}
	}
	if r.Summary.Total != len(r.Vulnerabilities) || r.Summary.Critical < 1 || r.DBVersion == "" {
		t.Errorf("summary %+v, db %q", r.Summary, r.DBVersion)
	}

	// Inventory: every installed dpkg package, with its source.
	inv, err := s.Index(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range inv.Packages {
		if p.Location == "/var/lib/dpkg/status" {
			n++
		}
		if p.Name == "libc6" && (p.SourceName != "glibc" || p.Version != wantInstalled["libc6"]) {
			t.Errorf("libc6: %+v", p)
		}
	}
	out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Status}\n").Output()
	if err == nil {
		want := strings.Count(string(out), "installed\n") - strings.Count(string(out), "-installed\n") - strings.Count(string(out), "not-installed\n")
		if n != want {
			t.Errorf("inventory has %d dpkg packages, dpkg-query says %d installed", n, want)
		}
	}
	t.Logf("inventory: %d packages (%d dpkg), OS %+v", len(inv.Packages), n, inv.OS)
}

func TestConformance(t *testing.T) {
	scantest.RunScannerTests(t, scantest.Harness{
		// The suite checks LastScanned against the real clock.
		NewScanner: func(t *testing.T) scan.Scanner {
			db, err := native.LoadDB("testdata/osv")
			if err != nil {
				t.Fatal(err)
			}
			s, err := native.New(db, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Known: func(t *testing.T, _ scan.Scanner) (v1.Image, []string) {
			return realImage(t), []string{"CVE-2005-2541", "CVE-2099-0001", "BERTH-TEST-GO-0001"}
		},
	})
}
