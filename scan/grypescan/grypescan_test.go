package grypescan_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/grypescan"
	"github.com/berth-dev/berth/scan/scantest"
)

func TestParse(t *testing.T) {
	b, err := os.ReadFile("testdata/debian.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := grypescan.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != scan.StatusSucceeded || r.OS != "debian 12" || r.Scanner.Version != "0.74.7" ||
		r.DBVersion != "sha256:5bb8f7e2c2dbd1f07c7cc0b4b1e7f0d3a5f6d7e8c9b0a1d2e3f4a5b6c7d8e9f0" || len(r.Vulnerabilities) != 3 {
		t.Fatalf("report: %+v", r)
	}
	tar := r.Vulnerabilities[0]
	if tar.ID != "CVE-2005-2541" || tar.Score != 10 || tar.SeveritySource != "nvd" || tar.Fixable || tar.Package.Ecosystem != "Debian:12" ||
		len(tar.Aliases) != 0 {
		t.Errorf("tar: %+v", tar)
	}
	libc := r.Vulnerabilities[2]
	if libc.ID != "CVE-2026-0001" || libc.Severity != scan.SeverityHigh || libc.Package.SourceName != "glibc" || libc.FixedVersion != "2.36-9+deb12u99" {
		t.Errorf("libc6: %+v", libc)
	}
	net := r.Vulnerabilities[1]
	if net.ID != "GHSA-4v7x-pqxf-cx7m" || !slices.Equal(net.Aliases, []string{"CVE-2023-45288"}) || net.Score != 7.5 ||
		net.SeveritySource != "nvd" || len(net.Ratings) != 2 || net.Package.Ecosystem != "Go" || net.FixedVersion != "0.23.0" {
		t.Errorf("x/net: %+v", net)
	}
}

func TestParseV6Unknown(t *testing.T) {
	b, err := os.ReadFile("testdata/nothing.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := grypescan.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != scan.StatusUnknown || r.DBVersion != "v6.0.2@2026-11-20T01:31:47Z" {
		t.Errorf("report: %+v", r)
	}
	if _, err := grypescan.Parse([]byte(`{"descriptor":{"name":"syft"}}`)); err == nil {
		t.Error("accepted another tool's document")
	}
}

func TestConformance(t *testing.T) {
	abs, err := filepath.Abs("testdata/nothing.json")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "grype")
	body := "#!/bin/sh\ncase \"$1\" in\n" +
		"db) echo '{\"schemaVersion\":\"v6.0.2\",\"from\":\"x\",\"built\":\"2026-11-20T01:31:47Z\",\"path\":\"/db\",\"valid\":true}'; exit 0;;\n" +
		"docker-archive:*) test -s \"${1#docker-archive:}\" || exit 2;; *) exit 2;; esac\ncat '" + abs + "'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	scantest.RunScannerTests(t, scantest.Harness{
		NewScanner: func(t *testing.T) scan.Scanner {
			s, err := grypescan.New(&grypescan.Options{Command: script})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}

func TestDBVersionV5Text(t *testing.T) {
	script := filepath.Join(t.TempDir(), "grype")
	body := "#!/bin/sh\nif [ \"$3\" = -o ]; then echo 'unknown flag: -o' >&2; exit 1; fi\n" +
		"printf 'Location:  /root/.cache/grype/db/5\\nBuilt:     2026-11-20 01:31:47 +0000 UTC\\nSchema:    5\\nChecksum:  sha256:5bb8f7e2\\nStatus:    valid\\n'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s, _ := grypescan.New(&grypescan.Options{Command: script})
	v, err := s.DBVersion(t.Context())
	if err != nil || v != "sha256:5bb8f7e2" {
		t.Errorf("DBVersion = %q, %v", v, err)
	}
}
