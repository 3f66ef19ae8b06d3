package ccc_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// debianLayer returns a gzip-compressed tar layer holding files, and the
// digest of the uncompressed tar (its diff ID).
func debianLayer(t *testing.T, files map[string]string) ([]byte, digest.Digest) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(raw.Bytes())
	_ = zw.Close()
	return gz.Bytes(), digest.FromBytes(raw.Bytes())
}

// pushLayeredImage pushes an image of the given layers with a config
// naming their diff IDs.
func pushLayeredImage(t *testing.T, s *server, repo, tag string, layers [][]byte, diffIDs []digest.Digest) image {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	img := image{Config: s.pushBlob(t, s.Admin, repo, cfg)}
	for _, l := range layers {
		img.Layers = append(img.Layers, s.pushBlob(t, s.Admin, repo, l))
	}
	img.Manifest = imageManifest(cfg, layers...)
	img.Digest = digest.FromBytes(img.Manifest)
	if r := s.do(t, s.Admin, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, img.Manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json"); r.Status != http.StatusCreated {
		t.Fatalf("push %s:%s: %d %s", repo, tag, r.Status, r.Body)
	}
	return img
}

// scanReport is the part of a vulnerability report the test reads.
type scanReport struct {
	Status          string    `json:"status"`
	Reason          string    `json:"reason"`
	LastScanned     time.Time `json:"lastScanned"`
	Vulnerabilities []struct {
		ID      string   `json:"id"`
		Aliases []string `json:"aliases"`
		Package struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"package"`
		FixedVersion string  `json:"fixedVersion"`
		Fixable      bool    `json:"fixable"`
		Score        float64 `json:"score"`
		Severity     string  `json:"severity"`
	} `json:"vulnerabilities"`
}

// waitReport polls the vulnerabilities route until the report is no
// longer pending.
func waitReport(t *testing.T, a *assessment, s *server, repo string, d digest.Digest) *scanReport {
	t.Helper()
	path := "/api/v1/repositories/" + repo + "/images/" + d.String() + "/vulnerabilities"
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := s.do(t, s.Admin, http.MethodGet, path, nil)
		var rep scanReport
		if r.Status == http.StatusOK && json.Unmarshal(r.Body, &rep) == nil && !strings.EqualFold(rep.Status, "pending") {
			return &rep
		}
		if time.Now().After(deadline) {
			a.Fatalf("GET %s: no finished report within 60 s (last: %d %s)", path, r.Status, truncate(r.Body))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const osRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n"

const dpkgStatus = `Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u1
Description: GNU C Library: Shared libraries

Package: tar
Status: install ok installed
Priority: required
Section: utils
Architecture: amd64
Version: 1.34+dfsg-1.2+deb12u1
Description: GNU version of the tar archiving utility
`

func TestCCC_CntrReg_CN01_AR01_C01_TR01_VulnerableImageFlagged(t *testing.T) {
	a := assess(t)
	t.Parallel()
	if !hasFlag(t, "vulndb") && !hasFlag(t, "scanner-url") {
		a.Gap("registryd does not scan pushed images: nothing flags or rejects an artifact with known vulnerabilities")
		return
	}
	db := t.TempDir()
	for _, f := range []string{"DEBIAN-CVE-2023-4911.json", "DEBIAN-CVE-2005-2541.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "scan", "native", "testdata", "osv", "debian", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(db, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := mustStart(t, serverOptions{Args: []string{"--vulndb", db}})
	a.Evidence("registryd started with --vulndb holding two real Debian OSV advisories (CVE-2023-4911 in glibc, fixed in 2.36-9+deb12u3; CVE-2005-2541 in tar, unfixed)")
	layer, diffID := debianLayer(t, map[string]string{"etc/os-release": osRelease, "var/lib/dpkg/status": dpkgStatus})
	repo := "team-a/scanned"
	img := pushLayeredImage(t, s, repo, "vulnerable", [][]byte{layer}, []digest.Digest{diffID})
	a.Evidence("pushed %s:vulnerable (%s), a Debian 12 image with libc6 2.36-9+deb12u1 and tar 1.34+dfsg-1.2+deb12u1; the push returned at once (scanning does not block it)", repo, img.Digest.String()[:19])
	rep := waitReport(t, a, s, repo, img.Digest)
	found := map[string]bool{}
	for _, v := range rep.Vulnerabilities {
		id := v.ID + " " + strings.Join(v.Aliases, " ")
		switch {
		case strings.Contains(id, "CVE-2023-4911"):
			found["glibc"] = true
			if v.Package.Version != "2.36-9+deb12u1" || v.FixedVersion != "2.36-9+deb12u3" || !v.Fixable || !strings.EqualFold(v.Severity, "High") {
				a.Errorf("CVE-2023-4911: package %s %s, fixed %q, fixable %v, severity %s; want libc6 2.36-9+deb12u1, fixed 2.36-9+deb12u3, fixable, High", v.Package.Name, v.Package.Version, v.FixedVersion, v.Fixable, v.Severity)
			}
			a.Evidence("flagged %s in %s %s: fixed in %s, fixable %v, score %.1f, severity %s", v.ID, v.Package.Name, v.Package.Version, v.FixedVersion, v.Fixable, v.Score, v.Severity)
		case strings.Contains(id, "CVE-2005-2541"):
			found["tar"] = true
			a.Evidence("flagged %s in %s %s: fixable %v, score %.1f, severity %s", v.ID, v.Package.Name, v.Package.Version, v.Fixable, v.Score, v.Severity)
		}
	}
	if !found["glibc"] || !found["tar"] {
		a.Errorf("report status %s (%s) lists %d vulnerabilities; want CVE-2023-4911 and CVE-2005-2541", rep.Status, rep.Reason, len(rep.Vulnerabilities))
	}
	if rep.LastScanned.IsZero() {
		a.Errorf("the report has no lastScanned time")
	}
	a.Evidence("report status %s, lastScanned %s", rep.Status, rep.LastScanned.Format(time.RFC3339))
	if r := s.do(t, s.Admin, http.MethodGet, "/api/v1/repositories/"+repo+"/images", nil); r.Status == http.StatusOK {
		var list struct {
			Images []struct {
				Digest digest.Digest `json:"digest"`
				Scan   struct {
					Status  string         `json:"status"`
					Summary map[string]int `json:"summary"`
				} `json:"scan"`
			} `json:"images"`
		}
		listed := false
		if err := json.Unmarshal(r.Body, &list); err != nil {
			a.Errorf("image list: %v", err)
		}
		for _, im := range list.Images {
			if im.Digest == img.Digest {
				listed = true
				if im.Scan.Summary["critical"] < 1 || im.Scan.Summary["high"] < 1 {
					a.Errorf("the image list shows scan %+v for the vulnerable image, want its critical and high findings", im.Scan)
				}
				a.Evidence("GET /api/v1/repositories/%s/images shows the image with scan status %s, summary %v", repo, im.Scan.Status, im.Scan.Summary)
			}
		}
		if !listed {
			a.Errorf("the image list does not show %s", img.Digest)
		}
	}

	// An image without a package database is Unknown, never clean.
	plain, plainID := debianLayer(t, map[string]string{"hello.txt": "no packages here\n"})
	scratch := pushLayeredImage(t, s, repo, "scratch", [][]byte{plain}, []digest.Digest{plainID})
	srep := waitReport(t, a, s, repo, scratch.Digest)
	if !strings.EqualFold(srep.Status, "unknown") || len(srep.Vulnerabilities) != 0 {
		a.Errorf("an image without a package database: status %s with %d vulnerabilities, want Unknown", srep.Status, len(srep.Vulnerabilities))
	}
	a.Evidence("an image without a package database: status %s (%s), not reported clean", srep.Status, srep.Reason)
	s.stop()
	types := outboxTypes(t, a, s.Data)
	scanned := false
	for _, ty := range types {
		scanned = scanned || strings.Contains(ty, "scan")
	}
	if !scanned {
		a.Errorf("no scan event in the outbox (event types: %v)", types)
	}
	a.Evidence("event types in the outbox after the scans: %v", types)
	a.Evidence("vulnerable images are flagged, not rejected: pulls are not gated on scan results")
}
