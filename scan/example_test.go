package scan_test

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/scantest"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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

// images is an ImageSource over images held in memory.
type images map[v1.Hash]v1.Image

func (m images) Open(ctx context.Context, repo string, d v1.Hash) (v1.Image, v1.ImageIndex, error) {
	if img, ok := m[d]; ok {
		return img, nil, nil
	}
	return nil, nil, driver.ErrNotFound
}

// A Pipeline scans pushed images in the background and stores reports
// with a storage driver; Report answers Pending until the scan is done.
func ExamplePipeline() {
	ctx := context.Background()
	img := empty.Image
	d, _ := img.Digest()

	fake := scantest.NewScanner(scan.Info{Name: "example", Version: "1"})
	fake.SetResult(d, &scan.Report{Vulnerabilities: []scan.Vulnerability{{
		ID: "CVE-2024-0001", Package: scan.Package{Name: "openssl", Version: "3.0.0"}, FixedVersion: "3.0.1",
		Ratings: []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
	}}})
	meta := memmeta.New() // any driver.ScanResults: sqlmeta in production
	p, err := scan.NewPipeline(fake, images{d: img}, meta, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	before, _ := p.Report(ctx, d)
	fmt.Println("before:", before.Status)

	p.Start(ctx)
	defer p.Close()
	p.OnPush("team/app", d)
	r := before
	for r.Status == scan.StatusPending {
		time.Sleep(time.Millisecond)
		r, _ = p.Report(ctx, d)
	}
	fmt.Println("after:", r.Status, r.Summary.Critical, "critical,", r.Summary.Fixable, "fixable")
	// Output:
	// before: Pending
	// after: Succeeded 1 critical, 1 fixable
}
