package cyclonedx_test

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/cyclonedx"
)

func TestConvert(t *testing.T) {
	r := &scan.Report{Scanner: scan.Info{Name: "berth-native", Version: "1"}, Status: scan.StatusSucceeded, Digest: "sha256:abc",
		LastScanned: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC),
		Vulnerabilities: []scan.Vulnerability{
			{ID: "CVE-1", Aliases: []string{"GHSA-1"}, Package: scan.Package{Name: "libssl3", Version: "3.0.0", PURL: "pkg:deb/debian/libssl3@3.0.0"}, FixedVersion: "3.0.1",
				Ratings: []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}, References: []string{"https://a"}},
			{ID: "CVE-1", Package: scan.Package{Name: "openssl", Version: "3.0.0", PURL: "pkg:deb/debian/openssl@3.0.0"}, FixedVersion: "3.0.1"},
			{ID: "DEBIAN-X", Package: scan.Package{Name: "tar", Version: "1"}, Severity: scan.SeverityLow},
		}}
	_ = r.Finalize()
	d := cyclonedx.Convert(r)
	if d.BOMFormat != "CycloneDX" || d.SpecVersion != "1.6" || !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(d.SerialNumber) {
		t.Errorf("header: %+v", d)
	}
	if len(d.Components) != 3 || len(d.Vulnerabilities) != 2 || d.Metadata.Component.Type != "container" {
		t.Fatalf("%d components, %d vulnerabilities", len(d.Components), len(d.Vulnerabilities))
	}
	v := d.Vulnerabilities[0]
	if v.ID != "CVE-1" || len(v.Affects) != 2 || v.Ratings[0].Method != "CVSSv31" || v.Ratings[0].Score != 9.8 || v.Ratings[0].Severity != "critical" ||
		v.Analysis.State != "in_triage" || len(v.Analysis.Response) != 1 || v.References[0].ID != "GHSA-1" || v.References[0].Source.Name != "GitHub" ||
		v.Recommendation != "libssl3: upgrade to 3.0.1; openssl: upgrade to 3.0.1" {
		t.Errorf("CVE-1: %+v", v)
	}
	if w := d.Vulnerabilities[1]; w.Ratings[0].Method != "other" || w.Ratings[0].Severity != "low" || w.Analysis.Response != nil {
		t.Errorf("DEBIAN-X: %+v", w)
	}
	var a, b bytes.Buffer
	cyclonedx.Encode(&a, r)
	cyclonedx.Encode(&b, r)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("not deterministic")
	}
}
