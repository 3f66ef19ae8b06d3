package native_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/native"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const alpineOSRelease = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
`

const apkInstalled = `C:Q1abc=
P:libcrypto3
V:3.1.4-r5
A:x86_64
o:openssl
T:Crypto library from openssl

P:busybox
V:1.36.1-r15
A:x86_64
o:busybox

`

func newScanner(t testing.TB, db *native.DB) *native.Scanner {
	t.Helper()
	s, err := native.New(db, &native.Options{Now: func() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustDB(t testing.TB, recs string) *native.DB {
	t.Helper()
	var advs []*native.Advisory
	if err := json.Unmarshal([]byte(recs), &advs); err != nil {
		t.Fatal(err)
	}
	db, err := native.NewDB(advs)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

const alpineRecords = `[
 {"id": "ALPINE-CVE-2024-0001", "upstream": ["CVE-2024-0001"], "affected": [{"package": {"ecosystem": "Alpine:v3.19", "name": "openssl"},
   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r6"}]}]}],
   "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]},
 {"id": "ALPINE-CVE-2024-0002", "affected": [{"package": {"ecosystem": "Alpine:v3.19", "name": "busybox"},
   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.36.1-r15"}]}]}]},
 {"id": "GHSA-npm1", "aliases": ["CVE-2024-0003"], "affected": [{"package": {"ecosystem": "npm", "name": "@scope/left-pad"},
   "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"last_affected": "1.2.0"}]}]}],
   "database_specific": {"severity": "MODERATE"}},
 {"id": "PYSEC-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "Requests"},
   "versions": ["2.31.0"], "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0rc1"}]}]}]}
]`

func alpineImage(t testing.TB) v1.Image {
	return image(t,
		layer(t,
			file{Name: "etc/os-release", Body: []byte(alpineOSRelease)},
			file{Name: "lib/apk/db/installed", Body: []byte(apkInstalled)},
			file{Name: "app/node_modules/@scope/left-pad/package.json", Body: []byte(`{"name":"@scope/left-pad","version":"1.1.0"}`)},
			file{Name: "app/node_modules/gone/package.json", Body: []byte(`{"name":"gone","version":"1.0.0"}`)},
			file{Name: "usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA", Body: []byte("Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n\nlong description\n")},
		),
		layer(t, file{Name: "app/node_modules/.wh.gone"}),
	)
}

func TestAlpineNPMPyPI(t *testing.T) {
	s := newScanner(t, mustDB(t, alpineRecords))
	r, err := s.Scan(context.Background(), alpineImage(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != scan.StatusSucceeded || r.OS != "alpine 3.19.1" {
		t.Fatalf("status %s (%s), os %q", r.Status, r.Reason, r.OS)
	}
	got := map[string]scan.Vulnerability{}
	for _, v := range r.Vulnerabilities {
		got[v.ID+" "+v.Package.Name] = v
	}
	if len(got) != 3 {
		t.Errorf("findings: %v", keys(got))
	}
	v, ok := got["CVE-2024-0001 libcrypto3"]
	if !ok || v.FixedVersion != "3.1.4-r6" || v.Severity != scan.SeverityCritical || v.Package.SourceName != "openssl" ||
		v.Package.PURL != "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl" {
		t.Errorf("libcrypto3 finding = %+v", v)
	}
	if v, ok := got["CVE-2024-0003 @scope/left-pad"]; !ok || v.Severity != scan.SeverityMedium || v.Fixable ||
		v.Package.PURL != "pkg:npm/%40scope/left-pad@1.1.0" {
		t.Errorf("npm finding = %+v", v)
	}
	if v, ok := got["PYSEC-1 requests"]; !ok || v.FixedVersion != "2.32.0rc1" || v.Package.PURL != "pkg:pypi/requests@2.31.0" {
		t.Errorf("pypi finding = %+v", v)
	}
	if _, ok := got["ALPINE-CVE-2024-0002 busybox"]; ok {
		t.Error("busybox 1.36.1-r15 reported although fixed in 1.36.1-r15")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestUnknownOS(t *testing.T) {
	s := newScanner(t, mustDB(t, alpineRecords))
	for name, files := range map[string][]file{
		"fedora":      {{Name: "etc/os-release", Body: []byte("ID=fedora\nVERSION_ID=39\n")}, {Name: "var/lib/rpm/rpmdb.sqlite", Body: []byte("x")}},
		"empty":       {{Name: "hello.txt", Body: []byte("hi")}},
		"no database": {{Name: "etc/os-release", Body: []byte(alpineOSRelease)}, {Name: "app/node_modules/x/package.json", Body: []byte(`{"name":"x","version":"1.0.0"}`)}},
		"nodata":      {{Name: "etc/os-release", Body: []byte("ID=debian\nVERSION_ID=12\n")}, {Name: "var/lib/dpkg/status", Body: []byte("Package: a\nStatus: install ok installed\nVersion: 1\n")}},
	} {
		r, err := s.Scan(context.Background(), image(t, layer(t, files...)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != scan.StatusUnknown || r.Reason == "" || r.LastScanned.IsZero() {
			t.Errorf("%s: status %s, reason %q", name, r.Status, r.Reason)
		}
		if name == "nodata" && !strings.Contains(r.Reason, "Debian:12") {
			t.Errorf("nodata: reason %q", r.Reason)
		}
	}
}

func TestOversizedDatabases(t *testing.T) {
	s, err := native.New(mustDB(t, alpineRecords), &native.Options{MaxDBSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	long := "P:x\nV:1\nT:" + strings.Repeat("a", 2<<20) + "\n"
	for name, body := range map[string]string{"big": apkInstalled, "long line": long} {
		s2 := s
		if name == "long line" {
			s2 = newScanner(t, mustDB(t, alpineRecords))
		}
		img := image(t, layer(t,
			file{Name: "etc/os-release", Body: []byte(alpineOSRelease)},
			file{Name: "lib/apk/db/installed", Body: []byte(body)},
		))
		r, err := s2.Scan(context.Background(), img, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Status != scan.StatusUnknown || !strings.Contains(r.Reason, "/lib/apk/db/installed") {
			t.Errorf("%s: status %s, reason %q", name, r.Status, r.Reason)
		}
	}
}

// TestNoDataIsUnknown: without vulnerability data a report never claims
// that an image is clean, even one whose packages need no OS data.
func TestNoDataIsUnknown(t *testing.T) {
	db, err := native.NewDB(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := native.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Match(context.Background(), &scan.Inventory{Packages: []scan.Package{{Name: "left-pad", Version: "1.0.0", Ecosystem: "npm"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != scan.StatusUnknown || r.Reason != "no vulnerability data loaded" {
		t.Errorf("report without data: %s %q", r.Status, r.Reason)
	}
}
