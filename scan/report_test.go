package scan_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/berth-dev/berth/scan"
)

func TestFinalize(t *testing.T) {
	r := &scan.Report{
		Status:      scan.StatusSucceeded,
		LastScanned: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Vulnerabilities: []scan.Vulnerability{
			{ID: "CVE-2", Package: scan.Package{Name: "b"}, Severity: scan.SeverityLow},
			{ID: "CVE-1", Aliases: []string{"GHSA-x", "CVE-1", "DSA-1", "GHSA-x"}, Package: scan.Package{Name: "a"}, FixedVersion: "2",
				References: []string{"https://b", "https://a", "https://b"},
				Ratings: []scan.Rating{
					{Source: "osv", Vector: "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
					{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
					{Source: "bad", Vector: "CVSS:3.1/AV:X"},
				}},
			{ID: "CVE-3", Package: scan.Package{Name: "c"}},
		},
	}
	if err := r.Finalize(); err == nil {
		t.Error("Finalize accepted an invalid vector silently")
	}
	v := r.Vulnerabilities[0]
	if v.ID != "CVE-1" || v.Severity != scan.SeverityCritical || v.Score != 9.8 || v.SeveritySource != "nvd" || !v.Fixable {
		t.Errorf("first finding = %+v", v)
	}
	if len(v.Ratings) != 2 || v.Ratings[1].Score != 7.5 || v.Ratings[1].Version != "2.0" {
		t.Errorf("ratings = %+v", v.Ratings)
	}
	if got := v.Aliases; len(got) != 2 || got[0] != "DSA-1" || got[1] != "GHSA-x" {
		t.Errorf("aliases = %v", got)
	}
	if got := v.References; len(got) != 2 || got[0] != "https://a" {
		t.Errorf("references = %v", got)
	}
	if r.Vulnerabilities[1].ID != "CVE-2" || r.Vulnerabilities[2].ID != "CVE-3" {
		t.Errorf("order = %v, %v", r.Vulnerabilities[1].ID, r.Vulnerabilities[2].ID)
	}
	want := scan.Summary{Total: 3, Critical: 1, Low: 1, Unknown: 1, Fixable: 1}
	if r.Summary != want {
		t.Errorf("summary = %+v, want %+v", r.Summary, want)
	}
	if r.Summary.AtLeast(scan.SeverityHigh) != 1 || r.Summary.AtLeast(scan.SeverityLow) != 2 || r.Summary.AtLeast(scan.SeverityUnknown) != 3 {
		t.Error("AtLeast")
	}
	a, _ := json.Marshal(r)
	if err := r.Finalize(); err != nil {
		t.Errorf("second Finalize: %v", err)
	}
	b, _ := json.Marshal(r)
	if string(a) != string(b) {
		t.Errorf("Finalize is not idempotent:\n%s\n%s", a, b)
	}
	var back scan.Report
	if err := json.Unmarshal(a, &back); err != nil {
		t.Fatal(err)
	}
	c, _ := json.Marshal(&back)
	if string(a) != string(c) {
		t.Errorf("JSON does not round-trip:\n%s\n%s", a, c)
	}
}

func TestPendingOmitsTime(t *testing.T) {
	r := &scan.Report{Status: scan.StatusPending}
	_ = r.Finalize()
	b, _ := json.Marshal(r)
	want := `{"schema":"berth.dev/scan-report/v1","scanner":{"name":""},"status":"Pending","vulnerabilities":[],"summary":{"total":0,"critical":0,"high":0,"medium":0,"low":0,"none":0,"unknown":0,"fixable":0}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]scan.Severity{
		"critical": scan.SeverityCritical, "HIGH": scan.SeverityHigh, "Moderate": scan.SeverityMedium,
		"medium": scan.SeverityMedium, "low": scan.SeverityLow, "negligible": scan.SeverityNone, "unknown": scan.SeverityUnknown,
	} {
		got, err := scan.ParseSeverity(in)
		if err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := scan.ParseSeverity("severe\n"); err == nil {
		t.Error("ParseSeverity accepted nonsense")
	}
}
