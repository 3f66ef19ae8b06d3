package sarif_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/sarif"
)

func report() *scan.Report {
	r := &scan.Report{Scanner: scan.Info{Name: "berth-native", Version: "1"}, Status: scan.StatusSucceeded, Digest: "sha256:abc",
		Vulnerabilities: []scan.Vulnerability{
			{ID: "CVE-1", Package: scan.Package{Name: "libssl3", Version: "3.0.0", Location: "/var/lib/dpkg/status"}, FixedVersion: "3.0.1",
				Ratings: []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}, References: []string{"https://a"}, Description: "bad\nthings"},
			{ID: "CVE-1", Package: scan.Package{Name: "openssl", Version: "3.0.0"}, FixedVersion: "3.0.1",
				Ratings: []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}},
			{ID: "GHSA-2", Package: scan.Package{Name: "x", Version: "1"}, Severity: scan.SeverityMedium},
		}}
	_ = r.Finalize()
	return r
}

func TestEncode(t *testing.T) {
	var buf bytes.Buffer
	if err := sarif.Encode(&buf, report()); err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log["version"] != "2.1.0" || log["$schema"] != sarif.SchemaURI {
		t.Errorf("header: %v %v", log["version"], log["$schema"])
	}
	l := sarif.Convert(report())
	rules, results := l.Runs[0].Tool.Driver.Rules, l.Runs[0].Results
	if len(rules) != 2 || len(results) != 3 {
		t.Fatalf("%d rules, %d results", len(rules), len(results))
	}
	if rules[0].Properties["security-severity"] != "9.8" || rules[1].Properties["security-severity"] != "4.0" {
		t.Errorf("security-severity: %v, %v", rules[0].Properties["security-severity"], rules[1].Properties["security-severity"])
	}
	if rules[0].ShortDescription.Text != "bad" || rules[0].HelpURI != "https://a" {
		t.Errorf("rule 0: %+v", rules[0])
	}
	if results[0].Level != "error" || results[2].Level != "warning" || results[2].RuleIndex != 1 ||
		results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI != "var/lib/dpkg/status" || results[1].Locations != nil {
		t.Errorf("results: %+v", results)
	}
	var again bytes.Buffer
	sarif.Encode(&again, report())
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("output is not deterministic")
	}
}
