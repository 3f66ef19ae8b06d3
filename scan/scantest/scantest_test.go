package scantest_test

import (
	"testing"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/scantest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

func TestFakeScanner(t *testing.T) {
	scantest.RunScannerTests(t, scantest.Harness{
		NewScanner: func(t *testing.T) scan.Scanner { return scantest.NewScanner(scan.Info{Name: "fake", Version: "1"}) },
		Known: func(t *testing.T, s scan.Scanner) (v1.Image, []string) {
			img, err := random.Image(100, 1)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			s.(*scantest.Scanner).SetResult(d, &scan.Report{Vulnerabilities: []scan.Vulnerability{{
				ID:      "CVE-2024-0001",
				Package: scan.Package{Name: "openssl", Version: "3.0.0"},
				Ratings: []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
			}}})
			return img, []string{"CVE-2024-0001"}
		},
	})
}
