package trivyscan_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/scantest"
	"github.com/berth-dev/berth/scan/trivyscan"
)

func TestParse(t *testing.T) {
	b, err := os.ReadFile("testdata/alpine.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := trivyscan.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != scan.StatusSucceeded || r.OS != "alpine 3.19.1" || len(r.Vulnerabilities) != 4 {
		t.Fatalf("report: %s %q %d", r.Status, r.OS, len(r.Vulnerabilities))
	}
	v := r.Vulnerabilities[0]
	if v.ID != "CVE-2023-45288" || v.Score != 7.5 || v.Severity != scan.SeverityHigh || v.SeveritySource != "ghsa" ||
		v.Package.Ecosystem != "Go" || v.FixedVersion != "0.23.0" || len(v.Aliases) != 1 || len(v.Ratings) != 2 {
		t.Errorf("first finding: %+v", v)
	}
	var crypto scan.Vulnerability
	for _, x := range r.Vulnerabilities {
		if x.ID == "CVE-2024-0727" {
			crypto = x
		}
	}
	if crypto.Package.Ecosystem != "Alpine:v3.19" || crypto.Score != 5.5 || crypto.SeveritySource != "nvd" ||
		crypto.Package.PURL != "pkg:apk/alpine/libcrypto3@3.1.4-r2?arch=x86_64&distro=3.19.1" || len(crypto.References) != 3 {
		t.Errorf("libcrypto3: %+v", crypto)
	}
	last := r.Vulnerabilities[len(r.Vulnerabilities)-1]
	if last.ID != "GHSA-xxxx-unrated" || last.Severity != scan.SeverityUnknown {
		t.Errorf("unrated: %+v", last)
	}
	want := scan.Summary{Total: 4, High: 1, Medium: 2, Unknown: 1, Fixable: 3}
	if r.Summary != want {
		t.Errorf("summary %+v, want %+v", r.Summary, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{``, `{"SchemaVersion": 1}`, `[]`} {
		if _, err := trivyscan.Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

// fakeTrivy writes a script that prints testdata/nothing.json after
// checking that it was given a readable image tarball.
func fakeTrivy(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("testdata/nothing.json")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "trivy")
	body := "#!/bin/sh\n" +
		"if [ \"$1\" = version ]; then echo '{\"Version\":\"0.58.0\",\"VulnerabilityDB\":{\"Version\":2,\"NextUpdate\":\"2026-11-23T12:15:17Z\",\"UpdatedAt\":\"2026-11-23T06:15:17Z\",\"DownloadedAt\":\"2026-11-23T07:01:32Z\"}}'; exit 0; fi\n" +
		"for a; do last=$a; done\ntest -s \"$last\" || { echo no image >&2; exit 2; }\ncat '" + abs + "'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

func TestConformance(t *testing.T) {
	cmd := fakeTrivy(t)
	scantest.RunScannerTests(t, scantest.Harness{
		NewScanner: func(t *testing.T) scan.Scanner {
			s, err := trivyscan.New(&trivyscan.Options{Command: cmd, Version: "0.58.0"})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}

func TestDBVersion(t *testing.T) {
	s, err := trivyscan.New(&trivyscan.Options{Command: fakeTrivy(t)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.DBVersion(t.Context())
	if err != nil || v != "v2@2026-11-23T06:15:17Z" {
		t.Errorf("DBVersion = %q, %v", v, err)
	}
}

func TestOptionsString(t *testing.T) {
	o := &trivyscan.Options{Env: []string{"TRIVY_PASSWORD=hunter2"}}
	if s := o.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "TRIVY_PASSWORD=REDACTED") {
		t.Errorf("String() = %s", s)
	}
}
