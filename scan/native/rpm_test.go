package native_test

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/scan"
)

// testdata/rpm/rpmdb.sqlite was written by rpm 4.18 (rpm --initdb and
// rpm -i --justdb with _db_backend sqlite) with two packages built by
// rpmbuild: openssl-libs 1:3.0.7-24.el9 (source openssl) and bash
// 0:5.1.8-6.el9.
const rockyRecords = `[
 {"id": "RLSA-2023:5209", "aliases": ["CVE-2023-3817"], "summary": "openssl security update",
  "affected": [
   {"package": {"ecosystem": "Rocky Linux:9", "name": "openssl-libs"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-25.el9"}]}]},
   {"package": {"ecosystem": "Rocky Linux:9", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-25.el9"}]}]}],
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}]},
 {"id": "RLSA-2022:8291", "affected": [{"package": {"ecosystem": "Rocky Linux:9", "name": "bash"},
   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.1.8-6.el9"}]}]}]},
 {"id": "RLSA-2099:0001", "affected": [{"package": {"ecosystem": "Rocky Linux:9", "name": "bash"},
   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.1.8-6.el9_1"}]}]}]}
]`

func TestRPMSQLite(t *testing.T) {
	s := newScanner(t, mustDB(t, rockyRecords))
	img := image(t, layer(t,
		file{Name: "etc/os-release", Body: []byte("NAME=\"Rocky Linux\"\nID=\"rocky\"\nVERSION_ID=\"9.3\"\n")},
		file{Name: "var/lib/rpm/rpmdb.sqlite", Body: readFile(t, "testdata/rpm/rpmdb.sqlite")},
	))
	inv, err := s.Index(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Packages) != 2 {
		t.Fatalf("packages: %+v (unsupported %v)", inv.Packages, inv.Unsupported)
	}
	p := inv.Packages[1]
	if p.Name != "openssl-libs" || p.Version != "1:3.0.7-24.el9" || p.SourceName != "openssl" || p.Ecosystem != "Rocky Linux:9" ||
		p.PURL != "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rocky-9.3&epoch=1&upstream=openssl" {
		t.Errorf("openssl-libs: %+v", p)
	}
	if inv.Packages[0].Version != "5.1.8-6.el9" {
		t.Errorf("bash: %+v", inv.Packages[0])
	}
	r, err := s.Match(context.Background(), inv)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != scan.StatusSucceeded || len(r.Vulnerabilities) != 2 {
		t.Fatalf("report: %s %s %+v", r.Status, r.Reason, r.Vulnerabilities)
	}
	for _, v := range r.Vulnerabilities {
		switch v.ID {
		case "CVE-2023-3817":
			if v.Package.Name != "openssl-libs" || v.FixedVersion != "1:3.0.7-25.el9" {
				t.Errorf("openssl-libs: %+v", v)
			}
		case "RLSA-2099:0001":
			if v.FixedVersion != "5.1.8-6.el9_1" {
				t.Errorf("bash: %+v", v)
			}
		default:
			t.Errorf("unexpected finding %s on %s", v.ID, v.Package.Name)
		}
	}
}

func TestRPMUnsupported(t *testing.T) {
	s := newScanner(t, mustDB(t, rockyRecords))
	for name, files := range map[string][]file{
		"bdb":            {{Name: "etc/os-release", Body: []byte("ID=rocky\nVERSION_ID=8.9\n")}, {Name: "var/lib/rpm/Packages", Body: []byte("x")}},
		"garbage sqlite": {{Name: "etc/os-release", Body: []byte("ID=rocky\nVERSION_ID=9.3\n")}, {Name: "var/lib/rpm/rpmdb.sqlite", Body: []byte("SQLite format 3\x00 not really")}},
		"rhel":           {{Name: "etc/os-release", Body: []byte("ID=rhel\nVERSION_ID=9.3\n")}, {Name: "var/lib/rpm/rpmdb.sqlite", Body: readFile(t, "testdata/rpm/rpmdb.sqlite")}},
	} {
		r, err := s.Scan(context.Background(), image(t, layer(t, files...)), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Status != scan.StatusUnknown {
			t.Errorf("%s: status %s (%s)", name, r.Status, r.Reason)
		}
	}
}
