package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/token"
	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const testPassword = "registryd-scan-test-password"

// startServer runs registryd on a loopback port over plain HTTP with its
// data in a fresh directory and the given extra flags, and returns its
// base URL and data directory.
func startServer(t *testing.T, extra ...string) (string, string) {
	t.Helper()
	t.Setenv("BERTH_ADMIN_PASSWORD", testPassword)
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	args := append([]string{"--addr", "127.0.0.1:0", "--insecure-http", "--data", data}, extra...)
	go func() { done <- run(ctx, args, &syncWriter{w: &logs}, ready) }()
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("registryd: %v", err)
			}
		})
		return "http://" + addr, data
	case err := <-done:
		cancel()
		t.Fatalf("registryd did not start: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("registryd did not start in 30s")
	}
	return "", ""
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// hostImage is an image of this machine's Debian package database and
// os-release: real packages at real versions. It skips (fails under
// CI=true) on hosts that are not Debian 12.
func hostImage(t *testing.T) (v1.Image, string) {
	t.Helper()
	status, err := os.ReadFile("/var/lib/dpkg/status")
	osRelease, err2 := os.ReadFile("/etc/os-release")
	if err != nil || err2 != nil || !strings.Contains(string(osRelease), `VERSION_ID="12"`) || !strings.Contains(string(osRelease), "ID=debian") {
		msg := "the scanning end-to-end test needs a Debian 12 host's /var/lib/dpkg/status and /etc/os-release"
		if testsvc.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	layer, err := crane.Layer(map[string][]byte{"var/lib/dpkg/status": status, "etc/os-release": osRelease})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img, string(status)
}

// vulnDB copies the real Debian advisories of the native scanner's test
// data (see scan/native/testdata/README.md) into a directory.
func vulnDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"DEBIAN-CVE-2005-2541.json", "DEBIAN-CVE-2023-4911.json", "DEBIAN-CVE-2026-31789.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "scan", "native", "testdata", "osv", "debian", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type client struct {
	t          *testing.T
	base       string
	user, pass string
	bearer     string
}

func (c client) do(method, path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func errorCode(b []byte) string {
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(b, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// TestScanEndToEnd pushes an image of this machine's Debian packages
// through the registry API, polls the vulnerabilities route until the
// scan is done, and checks the findings against real advisories, the
// SARIF and CycloneDX encodings, the error answers, authorization, the
// scan-completed event and the short-lived token an external scanner
// would get.
func TestScanEndToEnd(t *testing.T) {
	img, status := hostImage(t)
	base, data := startServer(t, "--vulndb", vulnDB(t))
	admin := client{t: t, base: base, user: "admin", pass: testPassword}
	host := strings.TrimPrefix(base, "http://")
	ref, err := name.ParseReference(host+"/team/app:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: testPassword})); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	vulns := "/api/v1/repositories/team/app/images/" + d.String() + "/vulnerabilities"

	// Poll until the report is there: pushes never wait for scans.
	var r scan.Report
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, b := admin.do("GET", vulns, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET vulnerabilities: %d %s", resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Status != scan.StatusPending {
			break
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Error("a Pending report has no Retry-After")
		}
		if time.Now().After(deadline) {
			t.Fatal("no report within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.Status != scan.StatusSucceeded || r.OS != "debian 12" || r.Digest != d.String() || r.Scanner.Name != "berth-native" {
		t.Fatalf("report: status %s (%s), os %q, digest %s, scanner %v", r.Status, r.Reason, r.OS, r.Digest, r.Scanner)
	}
	found := map[string]scan.Vulnerability{}
	for _, v := range r.Vulnerabilities {
		found[v.ID+" "+v.Package.Name] = v
	}
	// tar is affected by CVE-2005-2541 in every Debian 12 version (no fix).
	if v, ok := found["CVE-2005-2541 tar"]; !ok || v.Fixable || v.Severity != scan.SeverityCritical || v.Score != 10 {
		t.Errorf("CVE-2005-2541 on tar: %+v (found %v)", v, ok)
	}
	// glibc's CVE-2023-4911 was fixed in 2.36-9+deb12u3; the host's libc6
	// is later (testdata/README.md), so it must not be reported.
	if strings.Contains(status, "Package: libc6\nStatus: install ok installed") && containsVersion(status, "libc6", "2.36-9+deb12u14") {
		for k := range found {
			if strings.HasPrefix(k, "CVE-2023-4911 ") {
				t.Errorf("fixed vulnerability reported: %s", k)
			}
		}
	}
	if r.Summary.Total != len(r.Vulnerabilities) || r.Summary.Critical < 1 {
		t.Errorf("summary %+v", r.Summary)
	}

	// SARIF 2.1.0 with security-severity.
	resp, b := admin.do("GET", vulns+"?format=sarif", nil)
	var sl struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID         string         `json:"id"`
						Properties map[string]any `json:"properties"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/sarif+json") || json.Unmarshal(b, &sl) != nil || sl.Version != "2.1.0" || len(sl.Runs) != 1 {
		t.Fatalf("SARIF: %d %s %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	sarifOK := false
	for _, rule := range sl.Runs[0].Tool.Driver.Rules {
		if rule.ID == "CVE-2005-2541" && rule.Properties["security-severity"] == "10.0" {
			sarifOK = true
		}
	}
	if !sarifOK || len(sl.Runs[0].Results) != len(r.Vulnerabilities) {
		t.Errorf("SARIF rules %+v, %d results", sl.Runs[0].Tool.Driver.Rules, len(sl.Runs[0].Results))
	}

	// CycloneDX VEX.
	resp, b = admin.do("GET", vulns+"?format=cyclonedx", nil)
	var bom struct {
		BOMFormat       string `json:"bomFormat"`
		SpecVersion     string `json:"specVersion"`
		Vulnerabilities []struct {
			ID      string `json:"id"`
			Affects []struct {
				Ref string `json:"ref"`
			} `json:"affects"`
			Analysis struct {
				State string `json:"state"`
			} `json:"analysis"`
		} `json:"vulnerabilities"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &bom) != nil || bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.6" {
		t.Fatalf("CycloneDX: %d %.200s", resp.StatusCode, b)
	}
	cdxOK := false
	for _, v := range bom.Vulnerabilities {
		if v.ID == "CVE-2005-2541" && len(v.Affects) == 1 && strings.Contains(v.Affects[0].Ref, "pkg:deb/debian/tar@") && v.Analysis.State == "in_triage" {
			cdxOK = true
		}
	}
	if !cdxOK {
		t.Errorf("CycloneDX vulnerabilities: %+v", bom.Vulnerabilities)
	}

	// Errors: bad input is 400, unknown images 404, all JSON.
	for _, tc := range []struct {
		path string
		want int
		code string
	}{
		{vulns + "?format=spdx", 400, "FORMAT_INVALID"},
		{vulns + "?fmt=sarif", 400, "FORMAT_INVALID"},
		{"/api/v1/repositories/team/app/images/sha256:abc/vulnerabilities", 400, "DIGEST_INVALID"},
		{"/api/v1/repositories/team/app/images/md5:" + strings.Repeat("0", 32) + "/vulnerabilities", 400, "DIGEST_INVALID"},
		{"/api/v1/repositories/Team/App/images/" + d.String() + "/vulnerabilities", 400, "NAME_INVALID"},
		{"/api/v1/repositories/team/app/images/sha256:" + strings.Repeat("0", 64) + "/vulnerabilities", 404, "MANIFEST_UNKNOWN"},
		{"/api/v1/repositories/team/none/images/" + d.String() + "/vulnerabilities", 404, "NAME_UNKNOWN"},
	} {
		resp, b := admin.do("GET", tc.path, nil)
		if resp.StatusCode != tc.want || errorCode(b) != tc.code || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s = %d %s, want %d %s", tc.path, resp.StatusCode, b, tc.want, tc.code)
		}
	}
	if resp, _ := admin.do("DELETE", vulns, nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE vulnerabilities = %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// A rescan is accepted and leads to a fresh report.
	scanPath := "/api/v1/repositories/team/app/images/" + d.String() + "/scan"
	resp, b = admin.do("POST", scanPath, nil)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != vulns {
		t.Errorf("POST scan = %d %s, Location %q", resp.StatusCode, b, resp.Header.Get("Location"))
	}
	waitFor(t, "the rescan's report", func() bool {
		_, b := admin.do("GET", vulns, nil)
		var r2 scan.Report
		return json.Unmarshal(b, &r2) == nil && r2.Status == scan.StatusSucceeded && r2.LastScanned.After(r.LastScanned)
	})

	// Authorization: pull to read, push to trigger; nothing anonymous.
	anon := client{t: t, base: base}
	if resp, b := anon.do("GET", vulns, nil); resp.StatusCode != 401 || errorCode(b) != "UNAUTHORIZED" {
		t.Errorf("anonymous GET = %d %s", resp.StatusCode, b)
	}
	if resp, _ := anon.do("POST", scanPath, nil); resp.StatusCode != 401 {
		t.Errorf("anonymous POST = %d", resp.StatusCode)
	}
	reader := scopedToken(t, admin, "repository:team/app:pull")
	if resp, _ := reader.do("GET", vulns, nil); resp.StatusCode != 200 {
		t.Errorf("GET with pull = %d", resp.StatusCode)
	}
	if resp, b := reader.do("POST", scanPath, nil); resp.StatusCode != 403 || errorCode(b) != "DENIED" {
		t.Errorf("POST with pull only = %d %s", resp.StatusCode, b)
	}
	other := scopedToken(t, admin, "repository:other/*:pull,push")
	for _, m := range []string{"GET", "POST"} {
		p := map[string]string{"GET": vulns, "POST": scanPath}[m]
		if resp, b := other.do(m, p, nil); resp.StatusCode != 403 || errorCode(b) != "DENIED" {
			t.Errorf("%s with another repository's token = %d %s", m, resp.StatusCode, b)
		}
	}
	// Unknown images behind a denied repository reveal nothing either.
	if resp, _ := other.do("GET", "/api/v1/repositories/team/app/images/sha256:"+strings.Repeat("0", 64)+"/vulnerabilities", nil); resp.StatusCode != 403 {
		t.Errorf("GET of an unknown image without access = %d, want 403", resp.StatusCode)
	}
	writer := scopedToken(t, admin, "repository:team/app:pull,push")
	if resp, b := writer.do("POST", scanPath, nil); resp.StatusCode != 202 {
		t.Errorf("POST with push = %d %s", resp.StatusCode, b)
	}

	// The scan-completed event is in the outbox, with the report's outcome.
	meta, err := sqlmeta.Open(context.Background(), "sqlite://"+filepath.ToSlash(filepath.Join(data, "meta.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	evs, err := meta.ClaimEvents(context.Background(), time.Now(), time.Second, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var completed *scan.CompletedEvent
	for _, e := range evs {
		if e.Type == scan.EventScanCompleted && e.Subject == "team/app@"+d.String() {
			completed = &scan.CompletedEvent{}
			_ = json.Unmarshal(e.Data, completed)
		}
	}
	if completed == nil || completed.Status != scan.StatusSucceeded || completed.Summary.Critical != r.Summary.Critical {
		t.Errorf("scan-completed event: %+v", completed)
	}

	// An external scanner's token: pull of that one repository, nothing
	// else. It is minted with the server's token key and policy.
	key, err := token.LoadOrCreateKeyFile(filepath.Join(data, "token-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := token.NewService(key, anyAuthenticator{}, policy.New(meta), &token.Options{Service: "berth"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := pullTokenMinter(svc)(context.Background(), "team/app")
	if err != nil {
		t.Fatal(err)
	}
	scanner := client{t: t, base: base, bearer: tok}
	if resp, _ := scanner.do("GET", "/v2/team/app/manifests/"+d.String(), nil); resp.StatusCode != 200 {
		t.Errorf("scanner token pull = %d", resp.StatusCode)
	}
	if resp, _ := scanner.do("POST", "/v2/team/app/blobs/uploads/", nil); resp.StatusCode != 401 && resp.StatusCode != 403 {
		t.Errorf("scanner token push = %d, want denied", resp.StatusCode)
	}
	if err := remote.Write(mustRef(t, host+"/other/app:1"), img, remote.WithAuth(&authn.Basic{Username: "admin", Password: testPassword})); err != nil {
		t.Fatal(err)
	}
	if resp, _ := scanner.do("GET", "/v2/other/app/manifests/"+d.String(), nil); resp.StatusCode != 401 && resp.StatusCode != 403 {
		t.Errorf("scanner token pull of another repository = %d, want denied", resp.StatusCode)
	}
	if resp, _ := scanner.do("GET", vulns, nil); resp.StatusCode != 200 {
		// Reading the report needs pull, which the token has.
		t.Errorf("scanner token GET vulnerabilities = %d", resp.StatusCode)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func containsVersion(status, pkg, version string) bool {
	for st := range strings.SplitSeq(status, "\n\n") {
		if strings.HasPrefix(st, "Package: "+pkg+"\n") {
			return strings.Contains(st, "\nVersion: "+version+"\n")
		}
	}
	return false
}

// scopedToken creates a registry token with the scopes through the
// management API and returns a client using it.
func scopedToken(t *testing.T, admin client, scopes ...string) client {
	t.Helper()
	resp, b := admin.do("POST", "/api/v1/tokens", map[string]any{"name": "t", "scopes": scopes, "expiresIn": "1h"})
	var tk struct{ Username, Secret string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &tk) != nil || tk.Secret == "" {
		t.Fatalf("creating a token: %d %s", resp.StatusCode, b)
	}
	return client{t: t, base: admin.base, user: tk.Username, pass: tk.Secret}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// anyAuthenticator is never asked: the test mints tokens with Issue.
type anyAuthenticator struct{}

func (anyAuthenticator) Authenticate(*http.Request) (*auth.Identity, error) {
	return auth.Anonymous, nil
}
