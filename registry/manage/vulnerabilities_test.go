package manage_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/scan"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestVulnerabilities drives the vulnerability routes (package
// scan/scanapi), mounted as registryd mounts them, through the document:
// pending, succeeded, unknown and failed reports in every format, rescans,
// and every error the document lists.
func TestVulnerabilities(t *testing.T) {
	backends(t, testVulnerabilities)
}

// vulnerableReport is what the fake scanner finds in the vulnerable image.
func vulnerableReport() *scan.Report {
	return &scan.Report{
		OS: "debian 12",
		Vulnerabilities: []scan.Vulnerability{
			{
				ID: "CVE-2024-0001", Aliases: []string{"DSA-9999-1"},
				Package:      scan.Package{Name: "openssl", Version: "3.0.11-1~deb12u1", Ecosystem: "Debian:12", PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u1?distro=debian-12"},
				FixedVersion: "3.0.11-1~deb12u2",
				Ratings:      []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
				Description:  "A remotely exploitable flaw.",
				References:   []string{"https://security-tracker.debian.org/tracker/CVE-2024-0001"},
			},
			{
				ID:      "CVE-2024-0002",
				Package: scan.Package{Name: "tar", Version: "1.34+dfsg-1.2", Ecosystem: "Debian:12", PURL: "pkg:deb/debian/tar@1.34+dfsg-1.2?distro=debian-12"},
				Ratings: []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:L/AC:H/PR:L/UI:R/S:U/C:L/I:N/A:N"}},
			},
		},
	}
}

func testVulnerabilities(t *testing.T, metaURL string) {
	s := newServer(t, metaURL)
	s.createToken("reader", "repository:team/*:pull")
	s.createToken("pusher", "repository:team/*:pull,push")
	s.createToken("other", "repository:other/*:pull,push")
	vuln := s.pushImage("team/app:v1", "linux", "amd64")
	unknown := s.pushImage("team/app:v2", "linux", "amd64")
	broken := s.pushImage("team/app:broken", "linux", "amd64")
	idx, _ := s.pushIndex("team/app:multi")
	elsewhere := s.pushImage("other/app:v1", "", "")
	pub := s.pushImage("team/pub:v1", "", "")
	s.do(step{name: "a public repository", method: "PATCH", path: repos + "/team/pub", user: "admin", body: `{"visibility":"public"}`, wantStatus: 200})

	a, u, b, x := digestOf(t, vuln), digestOf(t, unknown), digestOf(t, broken), digestOf(t, idx)
	ha, _ := v1.NewHash(a)
	hb, _ := v1.NewHash(b)
	s.scanner.SetResult(ha, vulnerableReport())
	s.scanner.SetError(hb, errors.New("the image's layers cannot be read"))
	vulns := func(repo, d string) string { return repos + "/" + repo + "/images/" + d + "/vulnerabilities" }
	rescan := func(repo, d string) string { return repos + "/" + repo + "/images/" + d + "/scan" }
	absent := "sha256:" + strings.Repeat("1", 64)

	// Before the pipeline runs, every report is pending.
	for _, st := range []step{
		{name: "pending", method: "GET", path: vulns("team/app", a), user: "reader", wantStatus: 200,
			wantBody: []string{`"status":"Pending"`, `"digest":"` + a + `"`, `"vulnerabilities":[]`}, wantHeader: map[string]string{"Retry-After": "10", "Content-Type": "application/json"}},
		{name: "pending, json asked", method: "GET", path: vulns("team/app", a) + "?format=json", user: "reader", wantStatus: 200, wantHeader: map[string]string{"Retry-After": "10"}},
		{name: "pending as SARIF", method: "GET", path: vulns("team/app", a) + "?format=sarif", user: "reader", wantStatus: 409,
			wantBody: []string{`"code":"SCAN_INCOMPLETE"`, `"status":"Pending"`}, wantHeader: map[string]string{"Retry-After": "10"}},
		{name: "pending as CycloneDX", method: "GET", path: vulns("team/app", a) + "?format=cyclonedx", user: "reader", wantStatus: 409,
			wantBody: []string{`"code":"SCAN_INCOMPLETE"`}, wantHeader: map[string]string{"Retry-After": "10"}},
		{name: "rescan", method: "POST", path: rescan("team/app", a), user: "pusher", wantStatus: 202,
			wantBody:   []string{`"status":"Queued"`, `"repository":"team/app"`, `"report":"` + vulns("team/app", a) + `"`},
			wantHeader: map[string]string{"Location": vulns("team/app", a)}},
		{name: "rescan, percent-encoded name", method: "POST", path: rescan("team%2Fapp", u), user: "pusher", wantStatus: 202,
			wantHeader: map[string]string{"Location": vulns("team/app", u)}},
	} {
		s.do(st)
	}

	s.startScans()
	waitReports(t, s, map[string]scan.Status{a: scan.StatusSucceeded, u: scan.StatusUnknown, b: scan.StatusFailed, x: scan.StatusUnknown, digestOf(t, pub): scan.StatusUnknown})

	res := s.do(step{name: "succeeded", method: "GET", path: vulns("team/app", a), user: "reader", wantStatus: 200,
		wantBody: []string{`"status":"Succeeded"`, `"id":"CVE-2024-0001"`, `"severity":"Critical"`, `"fixable":true`, `"lastScanned":`, `"os":"debian 12"`}})
	if res.Header.Get("Retry-After") != "" {
		t.Errorf("a succeeded report with Retry-After %q", res.Header.Get("Retry-After"))
	}
	var rep scan.Report
	if err := json.Unmarshal(res.body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Total != 2 || rep.Summary.Critical != 1 || rep.Summary.Low != 1 || rep.Summary.Fixable != 1 {
		t.Errorf("summary %+v", rep.Summary)
	}

	// SARIF and CycloneDX: the content types the document lists, bodies
	// its schemas accept (checked by do), holding the findings.
	sarif := s.do(step{name: "SARIF", method: "GET", path: vulns("team/app", a) + "?format=sarif", user: "reader", wantStatus: 200,
		wantHeader: map[string]string{"Content-Type": "application/sarif+json"}})
	var log struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID         string
						Properties map[string]any
					}
				}
			}
			Results []struct{ RuleID, Level string }
		}
	}
	if err := json.Unmarshal(sarif.body, &log); err != nil || log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) != 2 ||
		log.Runs[0].Results[0].RuleID != "CVE-2024-0001" || log.Runs[0].Results[0].Level != "error" ||
		len(log.Runs[0].Tool.Driver.Rules) != 2 || log.Runs[0].Tool.Driver.Rules[0].Properties["security-severity"] != "9.8" {
		t.Errorf("SARIF log %s: %v", sarif.body, err)
	}
	cdx := s.do(step{name: "CycloneDX", method: "GET", path: vulns("team/app", a) + "?format=cyclonedx", user: "reader", wantStatus: 200,
		wantHeader: map[string]string{"Content-Type": "application/vnd.cyclonedx+json; version=1.6"}})
	var bom struct {
		BOMFormat, SpecVersion string
		Components             []struct{ PURL string }
		Vulnerabilities        []struct {
			ID      string
			Affects []struct{ Ref string }
		}
	}
	if err := json.Unmarshal(cdx.body, &bom); err != nil || bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.6" || len(bom.Vulnerabilities) != 2 ||
		bom.Vulnerabilities[0].ID != "CVE-2024-0001" || len(bom.Vulnerabilities[0].Affects) != 1 ||
		!strings.Contains(string(cdx.body), "pkg:deb/debian/openssl@3.0.11-1~deb12u1?distro=debian-12") {
		t.Errorf("CycloneDX document %s: %v", cdx.body, err)
	}
	for what, media := range map[string]string{"SARIF": "application/sarif+json", "CycloneDX": "application/vnd.cyclonedx+json"} {
		if loadDoc(t).Paths.Value("/api/v1/repositories/{name}/images/{digest}/vulnerabilities").Get.Responses.Status(200).Value.Content.Get(media) == nil {
			t.Errorf("the document does not describe %s (%s)", what, media)
		}
	}

	idxRes := s.do(step{name: "an index", method: "GET", path: vulns("team/app", x), user: "reader", wantStatus: 200,
		wantBody: []string{`"status":"Unknown"`, `"children":[`, `"architecture":"arm64"`}})
	var ir struct {
		Children []struct {
			Digest string
			Report scan.Report
		}
	}
	if err := json.Unmarshal(idxRes.body, &ir); err != nil || len(ir.Children) != 2 {
		t.Errorf("index report %s: %v", idxRes.body, err)
	}

	for _, st := range []step{
		{name: "HEAD", method: "HEAD", path: vulns("team/app", a), user: "reader", wantStatus: 200, wantHeader: map[string]string{"Content-Type": "application/json"}},
		{name: "unknown", method: "GET", path: vulns("team/app", u), user: "reader", wantStatus: 200,
			wantBody: []string{`"status":"Unknown"`, `"reason":"image not known to the fake scanner"`, `"vulnerabilities":[]`}},
		{name: "unknown as SARIF", method: "GET", path: vulns("team/app", u) + "?format=sarif", user: "reader", wantStatus: 409,
			wantBody: []string{`"code":"SCAN_INCOMPLETE"`, `"detail":{"reason":"image not known to the fake scanner","status":"Unknown"}`}},
		{name: "failed", method: "GET", path: vulns("team/app", b), user: "reader", wantStatus: 200,
			wantBody: []string{`"status":"Failed"`, `the image's layers cannot be read`}},
		{name: "failed as CycloneDX", method: "GET", path: vulns("team/app", b) + "?format=cyclonedx", user: "reader", wantStatus: 409,
			wantBody: []string{`"code":"SCAN_INCOMPLETE"`, `"status":"Failed"`}},
		{name: "an index as SARIF", method: "GET", path: vulns("team/app", x) + "?format=sarif", user: "reader", wantStatus: 409},
		{name: "percent-encoded name", method: "GET", path: vulns("team%2Fapp", a), user: "reader", wantStatus: 200, wantBody: []string{`"status":"Succeeded"`}},
		{name: "public, anonymous", method: "GET", path: vulns("team/pub", digestOf(t, pub)), wantStatus: 200, wantBody: []string{`"status":"Unknown"`}},

		{name: "unknown format", method: "GET", path: vulns("team/app", a) + "?format=xml", user: "reader", wantStatus: 400, invalid: true, wantBody: []string{`"FORMAT_INVALID"`}},
		{name: "format in capitals", method: "GET", path: vulns("team/app", a) + "?format=SARIF", user: "reader", wantStatus: 400, invalid: true, wantBody: []string{`"FORMAT_INVALID"`}},
		{name: "format twice", method: "GET", path: vulns("team/app", a) + "?format=json&format=sarif", user: "reader", wantStatus: 400, wantBody: []string{`"FORMAT_INVALID"`}},
		{name: "unknown parameter", method: "GET", path: vulns("team/app", a) + "?pretty=1", user: "reader", wantStatus: 400, invalid: true, wantBody: []string{`"FORMAT_INVALID"`}},
		{name: "bad digest", method: "GET", path: vulns("team/app", "sha256:xyz"), user: "reader", wantStatus: 400, invalid: true, wantBody: []string{`"DIGEST_INVALID"`}},
		{name: "unsupported algorithm", method: "GET", path: vulns("team/app", "md5:"+strings.Repeat("a", 32)), user: "reader", wantStatus: 400, invalid: true, wantBody: []string{`"DIGEST_INVALID"`}},
		{name: "bad name", method: "GET", path: vulns("Team/App", a), user: "admin", wantStatus: 400, invalid: true, wantBody: []string{`"NAME_INVALID"`}},
		{name: "rescan bad digest", method: "POST", path: rescan("team/app", "sha256:xyz"), user: "pusher", wantStatus: 400, invalid: true, wantBody: []string{`"DIGEST_INVALID"`}},
		{name: "rescan bad name", method: "POST", path: rescan("-team/app", a), user: "admin", wantStatus: 400, invalid: true, wantBody: []string{`"NAME_INVALID"`}},

		{name: "anonymous", method: "GET", path: vulns("team/app", a), wantStatus: 401, wantBody: []string{`"UNAUTHORIZED"`}, wantHeader: map[string]string{"WWW-Authenticate": `Basic realm="berth"`}},
		{name: "wrong password", method: "GET", path: vulns("team/app", a), user: "bad", wantStatus: 401, wantHeader: map[string]string{"WWW-Authenticate": "*"}},
		{name: "rescan anonymous", method: "POST", path: rescan("team/app", a), wantStatus: 401, wantHeader: map[string]string{"WWW-Authenticate": "*"}},
		{name: "rescan of a public image, anonymous", method: "POST", path: rescan("team/pub", digestOf(t, pub)), wantStatus: 401},
		{name: "no pull", method: "GET", path: vulns("team/app", a), user: "other", wantStatus: 403, wantBody: []string{`"DENIED"`}},
		{name: "no pull, unknown image alike", method: "GET", path: vulns("team/app", absent), user: "other", wantStatus: 403},
		{name: "rescan needs push", method: "POST", path: rescan("team/app", a), user: "reader", wantStatus: 403, wantBody: []string{`"DENIED"`}},

		{name: "unknown image", method: "GET", path: vulns("team/app", absent), user: "reader", wantStatus: 404, wantBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "another repository's image", method: "GET", path: vulns("team/app", digestOf(t, elsewhere)), user: "admin", wantStatus: 404, wantBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "unknown repository", method: "GET", path: vulns("team/none", a), user: "reader", wantStatus: 404, wantBody: []string{`"NAME_UNKNOWN"`}},
		{name: "unknown image as SARIF", method: "GET", path: vulns("team/app", absent) + "?format=sarif", user: "reader", wantStatus: 404},
		{name: "rescan unknown image", method: "POST", path: rescan("team/app", absent), user: "pusher", wantStatus: 404, wantBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "rescan unknown repository", method: "POST", path: rescan("team/none", a), user: "pusher", wantStatus: 404, wantBody: []string{`"NAME_UNKNOWN"`}},

		{name: "report methods", method: "DELETE", path: vulns("team/app", a), user: "admin", wantStatus: 405},
		{name: "report POST", method: "POST", path: vulns("team/app", a), user: "admin", body: `{}`, wantStatus: 405},
		{name: "scan methods", method: "GET", path: rescan("team/app", a), user: "admin", wantStatus: 405},
	} {
		s.do(st)
	}

	// A rescan of a scanned image runs again; the report stays readable
	// meanwhile.
	calls := s.scanner.Calls()
	s.do(step{name: "rescan a scanned image", method: "POST", path: rescan("team/app", a), user: "pusher", wantStatus: 202})
	for deadline := time.Now().Add(20 * time.Second); s.scanner.Calls() == calls; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rescan did not run")
		}
	}
	s.do(step{name: "after the rescan", method: "GET", path: vulns("team/app", a), user: "reader", wantStatus: 200, wantBody: []string{`"status":"Succeeded"`}})

	// A closed pipeline takes no jobs; reports stay readable.
	if err := s.scans.Close(); err != nil {
		t.Fatal(err)
	}
	s.do(step{name: "closed pipeline", method: "POST", path: rescan("team/app", a), user: "pusher", wantStatus: 503,
		wantBody: []string{`"UNAVAILABLE"`}, wantHeader: map[string]string{"Retry-After": "10"}})
	s.do(step{name: "reports of a closed pipeline", method: "GET", path: vulns("team/app", a), user: "reader", wantStatus: 200, wantBody: []string{`"status":"Succeeded"`}})
}

// waitReports waits until each digest's report has the status.
func waitReports(t *testing.T, s *server, want map[string]scan.Status) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for d, status := range want {
		h, err := v1.NewHash(d)
		if err != nil {
			t.Fatal(err)
		}
		for {
			r, err := s.scans.Report(context.Background(), h)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == status {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("report of %s: %s (%s), want %s", d, r.Status, r.Reason, status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
