package scan_test

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/scantest"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// A report's findings are scored from their CVSS vectors: the highest
// source wins.
func ExampleReport_Finalize() {
	r := &scan.Report{Status: scan.StatusSucceeded, Vulnerabilities: []scan.Vulnerability{{
		ID:           "CVE-2023-0286",
		Package:      scan.Package{Name: "openssl", Version: "3.0.7-1", Ecosystem: "Debian:12"},
		FixedVersion: "3.0.8-1",
		Ratings: []scan.Rating{
			{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H"},
			{Source: "ghsa", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:H"},
		},
	}}}
	if err := r.Finalize(); err != nil {
		fmt.Println(err)
	}
	v := r.Vulnerabilities[0]
	fmt.Println(v.ID, v.Score, v.Severity, "from", v.SeveritySource, "fixable:", v.Fixable)
	fmt.Println("high or worse:", r.Summary.AtLeast(scan.SeverityHigh))
	// Output:
	// CVE-2023-0286 9.1 Critical from ghsa fixable: true
	// high or worse: 1
}

// ScanIndex scans each image of a multi-platform index.
func ExampleScanIndex() {
	img := empty.Image
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img})
	s := scantest.NewScanner(scanInfo)
	reports, err := scan.ScanIndex(context.Background(), s, idx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range reports {
		fmt.Println(c.Report.Status, c.Report.Reason)
	}
	// Output:
	// Unknown image not known to the fake scanner
}

var scanInfo = scan.Info{Name: "example", Version: "1"}
