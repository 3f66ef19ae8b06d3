package scanapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/registry/registrytest"
	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/scanapi"
	"github.com/berth-dev/berth/scan/scantest"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/imagesource"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// fixture is a registry (registrytest, over HTTP) with a scan pipeline
// and the Handler in front of it, as registryd composes them.
type fixture struct {
	t       *testing.T
	srv     *registrytest.Server
	front   *httptest.Server
	reg     driver.Registry
	fake    *scantest.Scanner
	p       *scan.Pipeline
	allowed map[string]bool // "repo read" / "repo write"
}

func newFixture(t *testing.T, hookPushes bool) *fixture {
	t.Helper()
	f := &fixture{t: t, srv: registrytest.NewServer(t, nil), fake: scantest.NewScanner(scan.Info{Name: "fake", Version: "1"}), allowed: map[string]bool{}}
	var err error
	if f.reg, err = f.srv.Store.Registry(); err != nil {
		t.Fatal(err)
	}
	src, err := imagesource.New(f.srv.Store)
	if err != nil {
		t.Fatal(err)
	}
	if f.p, err = scan.NewPipeline(f.fake, src, f.reg, f.reg, &scan.PipelineOptions{PollInterval: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.p.Close() })
	h, err := scanapi.NewHandler(f.p, f.reg, func(r *http.Request, repo string, write bool) error {
		switch r.Header.Get("X-Test-User") {
		case "":
			return &errcode.Error{Code: errcode.Unauthenticated, Msg: "who?"}
		case "broken":
			return &errcode.Error{Code: errcode.Internal, Msg: "authorizer down"}
		}
		if f.allowed[repo+map[bool]string{false: " read", true: " write"}[write]] {
			return nil
		}
		return &errcode.Error{Code: errcode.PermissionDenied, Msg: "no"}
	}, &scanapi.HandlerOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var next http.Handler = f.srv.Handler
	if hookPushes {
		next = scanapi.QueuePushes(f.p, next)
	}
	f.front = httptest.NewServer(h.Wrap(next))
	t.Cleanup(f.front.Close)
	return f
}

func (f *fixture) push(repo string, img v1.Image) v1.Hash {
	f.t.Helper()
	ref, err := name.ParseReference(strings.TrimPrefix(f.front.URL, "http://")+"/"+repo+":latest", name.Insecure)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: registrytest.AdminUser, Password: registrytest.AdminPassword})); err != nil {
		f.t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

func (f *fixture) get(method, path, user string) (*http.Response, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.front.URL+path, nil)
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func vulnPath(repo string, d v1.Hash) string {
	return "/api/v1/repositories/" + repo + "/images/" + d.String() + "/vulnerabilities"
}

func code(b []byte) string {
	var e struct{ Errors []struct{ Code string } }
	_ = json.Unmarshal(b, &e)
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func waitStatus(t *testing.T, p *scan.Pipeline, d v1.Hash, want scan.Status) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := p.Report(context.Background(), d)
		if err == nil && r.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("report of %s: %+v, %v; want %s", d, r, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPendingThenReport(t *testing.T) {
	f := newFixture(t, true)
	f.allowed["team/app read"] = true
	img, _ := random.Image(256, 1)
	d := f.push("team/app", img) // queued by QueuePushes; the pipeline is not started yet

	resp, b := f.get("GET", vulnPath("team/app", d), "u")
	var r scan.Report
	if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil || r.Status != scan.StatusPending || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("before the scan: %d %s", resp.StatusCode, b)
	}
	// SARIF and CycloneDX never encode an incomplete report as empty.
	for _, format := range []string{"sarif", "cyclonedx"} {
		resp, b := f.get("GET", vulnPath("team/app", d)+"?format="+format, "u")
		if resp.StatusCode != http.StatusConflict || code(b) != "SCAN_INCOMPLETE" || !strings.Contains(string(b), `"status":"Pending"`) {
			t.Errorf("%s of a pending report: %d %s", format, resp.StatusCode, b)
		}
	}

	f.fake.SetResult(d, &scan.Report{Vulnerabilities: []scan.Vulnerability{{ID: "CVE-1", Package: scan.Package{Name: "p", Version: "1"},
		Ratings: []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}}}})
	f.p.Start(context.Background())
	waitStatus(t, f.p, d, scan.StatusSucceeded)
	resp, b = f.get("GET", vulnPath("team/app", d), "u")
	if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil || r.Status != scan.StatusSucceeded || r.Summary.Critical != 1 {
		t.Errorf("after the scan: %d %s", resp.StatusCode, b)
	}
	if resp, b := f.get("HEAD", vulnPath("team/app", d), "u"); resp.StatusCode != 200 || len(b) != 0 {
		t.Errorf("HEAD: %d, %d bytes", resp.StatusCode, len(b))
	}

	// An Unknown report is served in JSON with its reason, and refused
	// as SARIF.
	f.allowed["team/app write"] = true
	f.fake.SetResult(d, &scan.Report{Status: scan.StatusUnknown, Reason: "no package database"})
	if resp, b := f.get("POST", "/api/v1/repositories/team/app/images/"+d.String()+"/scan", "u"); resp.StatusCode != 202 {
		t.Fatalf("POST scan: %d %s", resp.StatusCode, b)
	}
	waitStatus(t, f.p, d, scan.StatusUnknown)
	if resp, b := f.get("GET", vulnPath("team/app", d)+"?format=sarif", "u"); resp.StatusCode != 409 || !strings.Contains(string(b), "no package database") {
		t.Errorf("SARIF of an Unknown report: %d %s", resp.StatusCode, b)
	}

	// After Close, rescans are refused with 503.
	f.p.Close()
	if resp, b := f.get("POST", "/api/v1/repositories/team/app/images/"+d.String()+"/scan", "u"); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST scan after Close: %d %s", resp.StatusCode, b)
	}
}

func TestAuthorization(t *testing.T) {
	f := newFixture(t, false)
	img, _ := random.Image(256, 1)
	d := f.push("team/app", img)
	f.allowed["team/app read"] = true
	scanPath := "/api/v1/repositories/team/app/images/" + d.String() + "/scan"
	unknown := "/api/v1/repositories/team/app/images/sha256:" + strings.Repeat("1", 64) + "/vulnerabilities"
	for _, tc := range []struct {
		method, path, user string
		status             int
		code               string
	}{
		{"GET", vulnPath("team/app", d), "", 401, "UNAUTHORIZED"},
		{"POST", scanPath, "", 401, "UNAUTHORIZED"},
		{"GET", vulnPath("team/app", d), "broken", 500, "UNKNOWN"},
		{"POST", scanPath, "u", 403, "DENIED"},                // pull only
		{"GET", vulnPath("other/app", d), "u", 403, "DENIED"}, // no access
		{"GET", "/api/v1/repositories/other/app/images/sha256:" + strings.Repeat("1", 64) + "/vulnerabilities", "u", 403, "DENIED"},
		{"GET", unknown, "u", 404, "MANIFEST_UNKNOWN"},
		{"PUT", scanPath, "u", 405, "UNSUPPORTED"},
		// Formats are the document's lower-case words, given once.
		{"GET", vulnPath("team/app", d) + "?format=SARIF", "u", 400, "FORMAT_INVALID"},
		{"GET", vulnPath("team/app", d) + "?format=Json", "u", 400, "FORMAT_INVALID"},
		{"GET", vulnPath("team/app", d) + "?format=json&format=json", "u", 400, "FORMAT_INVALID"},
		{"GET", vulnPath("team/app", d) + "?pretty=1", "u", 400, "FORMAT_INVALID"},
	} {
		resp, b := f.get(tc.method, tc.path, tc.user)
		if resp.StatusCode != tc.status || code(b) != tc.code {
			t.Errorf("%s %s as %q = %d %s, want %d %s", tc.method, tc.path, tc.user, resp.StatusCode, b, tc.status, tc.code)
		}
		// A 401 challenges the client (RFC 9110, section 15.5.2).
		if c := resp.Header.Get("WWW-Authenticate"); (tc.status == 401) != (c != "") || tc.status == 401 && c != `Basic realm="berth"` {
			t.Errorf("%s %s as %q: WWW-Authenticate %q", tc.method, tc.path, tc.user, c)
		}
	}
	// The image exists in team/app only: read access to another
	// repository does not reach it.
	f.allowed["other/app read"] = true
	if resp, b := f.get("GET", vulnPath("other/app", d), "u"); resp.StatusCode != 404 || code(b) != "NAME_UNKNOWN" {
		t.Errorf("GET through a repository without the image = %d %s", resp.StatusCode, b)
	}
	// Routes not served by the Handler go to the registry.
	if resp, _ := f.get("GET", "/v2/", ""); resp.StatusCode != 200 && resp.StatusCode != 401 {
		t.Errorf("/v2/ through Wrap = %d", resp.StatusCode)
	}
}

// TestSweepClosesPushGap: a push whose scan job was lost (here: no
// QueuePushes in front of the registry, as if the node crashed right
// after committing the manifest) is scanned by the pipeline's sweep.
func TestSweepClosesPushGap(t *testing.T) {
	f := newFixture(t, false)
	img, _ := random.Image(256, 1)
	d := f.push("team/app", img)
	f.fake.SetResult(d, &scan.Report{})
	if r, _ := f.p.Report(context.Background(), d); r.Status != scan.StatusPending {
		t.Fatalf("report before any job: %s", r.Status)
	}
	f.p.Start(context.Background()) // the start-up sweep finds the image without a report
	waitStatus(t, f.p, d, scan.StatusSucceeded)
	if n, err := f.p.Sweep(context.Background()); n != 0 || err != nil {
		t.Errorf("second sweep queued %d, %v; want nothing", n, err)
	}
}

// TestIndex: an index's report is the union of its images', with each
// image's own report and platform in "children".
func TestIndex(t *testing.T) {
	f := newFixture(t, true)
	f.allowed["team/multi read"] = true
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(strings.TrimPrefix(f.front.URL, "http://")+"/team/multi:latest", name.Insecure)
	if err := remote.WriteIndex(ref, idx, remote.WithAuth(&authn.Basic{Username: registrytest.AdminUser, Password: registrytest.AdminPassword})); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for i, c := range im.Manifests {
		f.fake.SetResult(c.Digest, &scan.Report{Vulnerabilities: []scan.Vulnerability{{ID: "CVE-" + string(rune('A'+i)), Package: scan.Package{Name: "p", Version: "1"}}}})
	}
	f.p.Start(context.Background())
	d, _ := idx.Digest()
	waitStatus(t, f.p, d, scan.StatusSucceeded)
	resp, b := f.get("GET", vulnPath("team/multi", d), "u")
	var ir struct {
		scan.Report
		Children []scan.ChildReport `json:"children"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &ir) != nil {
		t.Fatalf("index report: %d %s", resp.StatusCode, b)
	}
	if ir.Status != scan.StatusSucceeded || ir.Summary.Total != 2 || len(ir.Children) != 2 {
		t.Fatalf("index report: %s, %d findings, %d children", ir.Status, ir.Summary.Total, len(ir.Children))
	}
	for i, c := range ir.Children {
		if c.Digest != im.Manifests[i].Digest || c.Report == nil || c.Report.Status != scan.StatusSucceeded || c.Report.Summary.Total != 1 {
			t.Errorf("child %d: %+v", i, c)
		}
	}
}

func TestNewHandlerErrors(t *testing.T) {
	if _, err := scanapi.NewHandler(nil, nil, nil, nil); err == nil {
		t.Error("NewHandler without a pipeline succeeded")
	}
	f := newFixture(t, false)
	if _, err := scanapi.NewHandler(f.p, f.reg, nil, nil); err == nil {
		t.Error("NewHandler without an AuthorizeFunc succeeded")
	}
	if _, err := scanapi.NewHandler(f.p, f.reg, func(*http.Request, string, bool) error { return nil }, &scanapi.HandlerOptions{RetryAfter: -1}); err == nil {
		t.Error("negative RetryAfter accepted")
	}
	if _, err := scanapi.NewHandler(f.p, f.reg, func(*http.Request, string, bool) error { return nil }, &scanapi.HandlerOptions{Realm: `a"b`}); err == nil {
		t.Error("a realm with a quote accepted")
	}
}
