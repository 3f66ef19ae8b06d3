package manage_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/registry/manage"
	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/getkin/kin-openapi/openapi3"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

const repos = "/api/v1/repositories"

func TestDocument(t *testing.T) {
	d := loadDoc(t)
	if d.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", d.OpenAPI)
	}
	// Every object schema is closed, so that an undocumented field fails
	// validation; the open ones are other specifications' formats and a
	// base that a closed schema extends.
	open := map[string]bool{"SARIF": true, "CycloneDX": true, "TokenFields": true}
	for name, ref := range d.Components.Schemas {
		if !open[name] {
			checkClosed(t, name, ref.Value, map[*openapi3.Schema]bool{})
		}
	}
	// Every route of the contract is documented.
	for _, p := range []string{
		"/api/v1/openapi.yaml", "/api/v1/repositories", "/api/v1/repositories/{name}",
		"/api/v1/repositories/{name}/images", "/api/v1/repositories/{name}/images/{digest}",
		"/api/v1/repositories/{name}/images/{digest}/vulnerabilities", "/api/v1/repositories/{name}/images/{digest}/scan",
		"/api/v1/repositories/{name}/tags/{tag}/history", "/api/v1/repositories/{name}/tags/{tag}/restore",
		"/api/v1/repositories/{name}/lifecycle-policy", "/api/v1/repositories/{name}/lifecycle-policy/preview",
		"/api/v1/tokens", "/api/v1/tokens/{id}",
	} {
		if d.Paths.Value(p) == nil {
			t.Errorf("%s is not documented", p)
		}
	}
}

// TestReportSchema checks the documented vulnerability report against a
// real scan.Report.
func TestReportSchema(t *testing.T) {
	r := scan.Report{
		Scanner: scan.Info{Name: "berth-native", Version: "1"}, DBVersion: "sha256:abc",
		Digest: "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
		Status: scan.StatusSucceeded, LastScanned: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), OS: "debian 12",
		Vulnerabilities: []scan.Vulnerability{{
			ID: "CVE-2023-4911", Aliases: []string{"DSA-5514-1"},
			Package:      scan.Package{Name: "libc6", Version: "2.36-9", Ecosystem: "Debian:12", PURL: "pkg:deb/debian/libc6@2.36-9", SourceName: "glibc", SourceVersion: "2.36-9", Location: "/var/lib/dpkg/status"},
			FixedVersion: "2.36-9+deb12u3",
			Ratings:      []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}, {Source: "ghsa", Vector: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}},
			Description:  "buffer overflow", References: []string{"https://example.com/a"},
		}, {ID: "GHSA-x", Package: scan.Package{Name: "left", Version: "1"}}},
	}
	if err := r.Finalize(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	checkSchema(t, "report", "Report", b)
	b, _ = json.Marshal(scan.Report{Schema: scan.ReportSchema, Status: scan.StatusPending, Scanner: scan.Info{Name: "x"}, Vulnerabilities: []scan.Vulnerability{}})
	checkSchema(t, "pending report", "Report", b)
	// An index's report lists its images' reports.
	type child struct {
		Digest   string            `json:"digest"`
		Platform map[string]string `json:"platform"`
		Report   *scan.Report      `json:"report"`
	}
	b, _ = json.Marshal(struct {
		*scan.Report
		Children []child `json:"children"`
	}{&r, []child{{Digest: r.Digest, Platform: map[string]string{"os": "linux", "architecture": "arm64"}, Report: &r}}})
	checkSchema(t, "index report", "Report", b)
}

func TestAPI(t *testing.T) {
	backends(t, testAPI)
}

func testAPI(t *testing.T, metaURL string) {
	s := newServer(t, metaURL)
	s.createToken("reader", "repository:team/*:pull")
	s.createToken("pusher", "repository:team/*:pull,push")
	s.createToken("owner", "repository:team/**:*")

	// Content: two images and an index in team/app, one in pub/site.
	imgA := s.pushImage("team/app:v1", "linux", "arm64")
	imgB := s.pushImage("team/app:v2", "", "")
	idx, children := s.pushIndex("team/app:multi")
	s.pushImage("pub/site:latest", "linux", "amd64")
	a, b := digestOf(t, imgA), digestOf(t, imgB)
	ix, c0 := digestOf(t, idx), digestOf(t, children[0])
	s.events()

	// Repositories.
	for _, st := range []step{
		{name: "openapi document", method: "GET", path: "/api/v1/openapi.yaml", wantStatus: 200, wantHeader: map[string]string{"Content-Type": "application/yaml"}, wantBody: []string{"openapi: 3.1.0"}},
		{name: "openapi document is read only", method: "POST", path: "/api/v1/openapi.yaml", wantStatus: 405},
		{name: "create", method: "PUT", path: repos + "/team/new", user: "owner", wantStatus: 201,
			body:       `{"name":"team/new","visibility":"private","immutableTags":true,"immutableTagExclusions":["latest","dev-*"],"description":"new"}`,
			wantHeader: map[string]string{"Location": repos + "/team/new"}, wantBody: []string{`"immutableTagExclusions":["latest","dev-*"]`, `"description":"new"`}},
		{name: "replace: absent settings take their defaults", method: "PUT", path: repos + "/team/new", user: "owner", body: `{"immutableTags":true}`, wantStatus: 200,
			wantBody: []string{`"visibility":"private","immutableTags":true,"immutableTagExclusions":[],"description":""`}},
		{name: "push access does not create repositories", method: "PUT", path: repos + "/team/x", user: "pusher", body: `{}`, wantStatus: 403, wantBody: []string{`"DENIED"`}},
		{name: "outside the token's scope", method: "PUT", path: repos + "/other/x", user: "owner", body: `{}`, wantStatus: 403},
		{name: "anonymous", method: "PUT", path: repos + "/team/x", body: `{}`, wantStatus: 401, wantHeader: map[string]string{"WWW-Authenticate": `Basic realm="berth"`}},
		{name: "wrong password", method: "GET", path: repos, user: "bad", wantStatus: 401},
		{name: "unknown field", method: "PUT", path: repos + "/team/x", user: "owner", body: `{"visibility":"public","color":"red"}`, wantStatus: 400, invalid: true,
			wantBody: []string{`"code":"BODY_INVALID","message":"unknown field \"color\"","detail":{"field":"color"}`}},
		{name: "not JSON", method: "PUT", path: repos + "/team/x", user: "owner", body: `{"visibility":`, wantStatus: 400, invalid: true, wantBody: []string{`BODY_INVALID`}},
		{name: "wrong type", method: "PUT", path: repos + "/team/x", user: "owner", body: `{"immutableTags":"yes"}`, wantStatus: 400, invalid: true, wantBody: []string{`"field":"immutableTags"`}},
		{name: "unknown visibility", method: "PUT", path: repos + "/team/x", user: "owner", body: `{"visibility":"internal"}`, wantStatus: 400, invalid: true, wantBody: []string{`"field":"visibility"`}},
		{name: "bad exclusion pattern", method: "PUT", path: repos + "/team/x", user: "owner", body: `{"immutableTagExclusions":["v1","["]}`, wantStatus: 400, wantBody: []string{`"field":"immutableTagExclusions[1]"`}},
		{name: "renaming", method: "PUT", path: repos + "/team/x", user: "owner", body: `{"name":"team/y"}`, wantStatus: 400, wantBody: []string{`"field":"name"`}},
		{name: "read-only fields", method: "PUT", path: repos + "/team/x", user: "owner", body: `{"createdAt":"2026-01-01T00:00:00Z"}`, wantStatus: 400, invalid: true},
		{name: "trailing data", method: "PUT", path: repos + "/team/x", user: "owner", body: `{} {}`, wantStatus: 400},
		{name: "bad name", method: "PUT", path: repos + "/Team/App", user: "admin", body: `{}`, wantStatus: 400, invalid: true, wantBody: []string{`"NAME_INVALID"`}},
		{name: "bad name, empty component", method: "GET", path: repos + "/team//app", user: "admin", wantStatus: 400, invalid: true, wantBody: []string{`"NAME_INVALID"`}},
		{name: "bad name, separator", method: "GET", path: repos + "/team/-app", user: "admin", wantStatus: 400, invalid: true, wantBody: []string{`"NAME_INVALID"`}},
		{name: "not JSON content", method: "PUT", path: repos + "/team/x", user: "owner", body: `{}`, contentType: "text/plain", wantStatus: 415, invalid: true},
		{name: "too large", method: "PUT", path: repos + "/team/x", user: "owner", body: `{"description":"` + strings.Repeat("d", manage.MaxBodyBytes) + `"}`, wantStatus: 413, invalid: true},
		{name: "description too long", method: "PUT", path: repos + "/team/x", user: "owner", body: `{"description":"` + strings.Repeat("d", manage.MaxDescriptionBytes+1) + `"}`, wantStatus: 400, invalid: true},
		{name: "nothing was created", method: "GET", path: repos + "/team/x", user: "admin", wantStatus: 404, wantBody: []string{`"NAME_UNKNOWN"`}},
		{name: "patch", method: "PATCH", path: repos + "/team/new", user: "owner", contentType: "application/merge-patch+json", body: `{"visibility":"public","description":"hello"}`, wantStatus: 200,
			wantBody: []string{`"visibility":"public","immutableTags":true`, `"description":"hello"`}},
		{name: "patch null resets", method: "PATCH", path: repos + "/team/new", user: "owner", contentType: "application/merge-patch+json", body: `{"description":null,"visibility":null,"immutableTagExclusions":["dev-*"]}`, wantStatus: 200,
			wantBody: []string{`"visibility":"private","immutableTags":true,"immutableTagExclusions":["dev-*"],"description":""`}},
		{name: "an empty patch changes nothing", method: "PATCH", path: repos + "/team/new", user: "owner", body: `{}`, wantStatus: 200,
			wantBody: []string{`"immutableTagExclusions":["dev-*"]`}},
		{name: "neither does the same PUT", method: "PUT", path: repos + "/team/new", user: "owner", body: `{"immutableTags":true,"immutableTagExclusions":["dev-*"]}`, wantStatus: 200},
		{name: "patch wrong type", method: "PATCH", path: repos + "/team/new", user: "owner", body: `{"immutableTags":"yes"}`, wantStatus: 400, invalid: true, wantBody: []string{`"field":"immutableTags"`}},
		{name: "patch unknown field", method: "PATCH", path: repos + "/team/new", user: "owner", body: `{"owner":"me"}`, wantStatus: 400, invalid: true, wantBody: []string{`"field":"owner"`}},
		{name: "patch not an object", method: "PATCH", path: repos + "/team/new", user: "owner", body: `[1]`, wantStatus: 400, invalid: true},
		{name: "patch rename", method: "PATCH", path: repos + "/team/new", user: "owner", body: `{"name":"team/other"}`, wantStatus: 400},
		{name: "patch missing", method: "PATCH", path: repos + "/team/missing", user: "owner", body: `{"description":"x"}`, wantStatus: 404, wantBody: []string{`"NAME_UNKNOWN"`}},
		{name: "patch as reader", method: "PATCH", path: repos + "/team/new", user: "reader", body: `{"description":"x"}`, wantStatus: 403},
		{name: "make pub/site public", method: "PATCH", path: repos + "/pub/site", user: "admin", body: `{"visibility":"public"}`, wantStatus: 200},
		{name: "get", method: "GET", path: repos + "/team/new", user: "reader", wantStatus: 200, wantBody: []string{`"name":"team/new"`}},
		{name: "head", method: "HEAD", path: repos + "/team/new", user: "reader", wantStatus: 200},
		{name: "get anonymous, private", method: "GET", path: repos + "/team/new", wantStatus: 401},
		{name: "get anonymous, public", method: "GET", path: repos + "/pub/site", wantStatus: 200, wantBody: []string{`"visibility":"public"`}},
		{name: "get outside the scope", method: "GET", path: repos + "/pub/nothing", user: "reader", wantStatus: 403},
		{name: "list methods", method: "POST", path: repos, user: "admin", body: `{}`, wantStatus: 405},
		{name: "repository methods", method: "POST", path: repos + "/team/new", user: "admin", body: `{}`, wantStatus: 405},
		{name: "page size zero", method: "GET", path: repos + "?n=0", user: "admin", wantStatus: 400, invalid: true, wantBody: []string{`"PAGINATION_NUMBER_INVALID"`}},
		{name: "page size not a number", method: "GET", path: repos + "?n=x", user: "admin", wantStatus: 400, invalid: true},
		{name: "a name ending in a route word, percent-encoded", method: "PUT", path: repos + "/team%2Fimages", user: "owner", body: `{"description":"tricky"}`, wantStatus: 201,
			wantHeader: map[string]string{"Location": repos + "/team%2Fimages"}, wantBody: []string{`"name":"team/images"`}},
		{name: "its images, literal slashes", method: "GET", path: repos + "/team/images/images", user: "owner", wantStatus: 200, wantBody: []string{`{"images":[]}`}},
		{name: "its settings, one encoded segment", method: "GET", path: repos + "/team%2Fimages", user: "reader", wantStatus: 200, wantBody: []string{`"description":"tricky"`}},
	} {
		s.do(st)
	}

	// Visibility: each caller lists what it may pull, and only that.
	names := func(user, query string) ([]string, string) {
		r := s.do(step{name: "list as " + user, method: "GET", path: repos + query, user: user, wantStatus: 200})
		var l manage.RepositoryList
		if err := json.Unmarshal(r.body, &l); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range l.Repositories {
			out = append(out, r.Name)
		}
		return out, r.Header.Get("Link")
	}
	for user, want := range map[string][]string{
		"":       {"pub/site"},
		"reader": {"pub/site", "team/app", "team/images", "team/new"},
		"admin":  {"pub/site", "team/app", "team/images", "team/new"},
	} {
		if got, link := names(user, ""); !slices.Equal(got, want) || link != "" {
			t.Errorf("%q lists %v (Link %q), want %v", user, got, link, want)
		}
	}
	// Pagination follows Link to the end, skipping what the caller may
	// not see.
	var all []string
	for q := "?n=1"; ; {
		got, link := names("reader", q)
		all = append(all, got...)
		if link == "" {
			break
		}
		if len(got) != 1 {
			t.Fatalf("page %v", got)
		}
		q = strings.TrimSuffix(strings.TrimPrefix(link, "<"+repos), `>; rel="next"`)
	}
	if !slices.Equal(all, []string{"pub/site", "team/app", "team/images", "team/new"}) {
		t.Errorf("paginated listing %v", all)
	}

	// Images.
	list := s.do(step{name: "images", method: "GET", path: repos + "/team/app/images", user: "reader", wantStatus: 200})
	var imgs manage.ImageList
	if err := json.Unmarshal(list.body, &imgs); err != nil {
		t.Fatal(err)
	}
	byDigest := map[string]*manage.Image{}
	for _, im := range imgs.Images {
		byDigest[string(im.Digest)] = im
	}
	if len(imgs.Images) != 5 {
		t.Fatalf("%d images, want 5: %s", len(imgs.Images), list.body)
	}
	if im := byDigest[a]; im == nil || !slices.Equal(im.Tags, []string{"v1"}) || len(im.Platforms) != 1 || im.Platforms[0].Architecture != "arm64" ||
		im.Size != imageSize(t, imgA) || im.Scan.Status != scan.StatusPending || im.PushedAt.IsZero() {
		t.Errorf("image v1: %+v", im)
	}
	if im := byDigest[b]; im == nil || len(im.Platforms) != 0 || im.Size != imageSize(t, imgB) {
		t.Errorf("image v2: %+v", im)
	}
	wantIdx := indexSize(t, idx) + imageSize(t, children[0]) + imageSize(t, children[1])
	if im := byDigest[ix]; im == nil || len(im.Platforms) != 2 || im.Platforms[0].Architecture != "amd64" || im.Platforms[1].Architecture != "arm64" ||
		im.Size != wantIdx || len(im.Children) != 2 || !slices.Equal(im.Tags, []string{"multi"}) {
		t.Errorf("index: %+v, want size %d", im, wantIdx)
	}

	// Pulls show as lastPulledAt (recorded in the background).
	if _, err := remote.Get(s.ref("team/app:v1"), s.remoteOpts()...); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		r := s.do(step{name: "pulled image", method: "GET", path: repos + "/team/app/images/" + a, user: "reader", wantStatus: 200})
		if strings.Contains(string(r.body), `"lastPulledAt":"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lastPulledAt after a pull: %s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A scan report shows in the image's scan state.
	report := scan.Report{Scanner: scan.Info{Name: "native"}, Status: scan.StatusSucceeded, LastScanned: time.Now(),
		Vulnerabilities: []scan.Vulnerability{{ID: "CVE-1", Package: scan.Package{Name: "p", Version: "1"}, FixedVersion: "2"}}}
	report.Finalize()
	data, _ := json.Marshal(report)
	if err := s.reg.PutScanResult(context.Background(), &driver.ScanResult{Digest: digest.Digest(a), Scanner: "native", Kind: driver.ScanReport, Data: data, ScannedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	var firstPage string
	for _, st := range []step{
		{name: "image", method: "GET", path: repos + "/team/app/images/" + a, user: "reader", wantStatus: 200,
			wantBody: []string{`"scan":{"status":"Succeeded","scanner":"native","lastScanned":`, `"summary":{"total":1,`, `"tags":["v1"]`}},
		{name: "image, encoded name", method: "GET", path: repos + "/team%2Fapp/images/" + a, user: "reader", wantStatus: 200},
		{name: "unknown image", method: "GET", path: repos + "/team/app/images/sha256:" + strings.Repeat("0", 64), user: "reader", wantStatus: 404, wantBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "image of an unknown repository", method: "GET", path: repos + "/team/none/images/sha256:" + strings.Repeat("0", 64), user: "admin", wantStatus: 404, wantBody: []string{`"NAME_UNKNOWN"`}},
		{name: "images of an unknown repository", method: "GET", path: repos + "/team/none/images", user: "admin", wantStatus: 404, wantBody: []string{`"NAME_UNKNOWN"`}},
		{name: "bad digest", method: "GET", path: repos + "/team/app/images/sha256:abc", user: "reader", wantStatus: 400, wantBody: []string{`"DIGEST_INVALID"`}},
		{name: "images anonymous", method: "GET", path: repos + "/team/app/images", wantStatus: 401},
		{name: "images page", method: "GET", path: repos + "/team/app/images?n=2", user: "reader", wantStatus: 200, wantHeader: map[string]string{"Link": "*"}},
		{name: "images bad last", method: "GET", path: repos + "/team/app/images?last=nope", user: "reader", wantStatus: 400, invalid: true},
		{name: "images methods", method: "DELETE", path: repos + "/team/app/images", user: "admin", wantStatus: 405},
		{name: "image methods", method: "PUT", path: repos + "/team/app/images/" + a, user: "admin", body: `{}`, wantStatus: 405},
		{name: "delete needs delete", method: "DELETE", path: repos + "/team/app/images/" + b, user: "pusher", wantStatus: 403},
		{name: "an index lists it", method: "DELETE", path: repos + "/team/app/images/" + c0, user: "owner", wantStatus: 409,
			wantBody: []string{`"code":"MANIFEST_REFERENCED"`, `"parents":["` + ix + `"]`}},
		{name: "force must be a boolean", method: "DELETE", path: repos + "/team/app/images/" + c0 + "?force=maybe", user: "owner", wantStatus: 400, invalid: true},
		{name: "forced", method: "DELETE", path: repos + "/team/app/images/" + c0 + "?force=true", user: "owner", wantStatus: 204},
		{name: "gone", method: "GET", path: repos + "/team/app/images/" + c0, user: "owner", wantStatus: 404},
		{name: "delete v2", method: "DELETE", path: repos + "/team/app/images/" + b, user: "owner", wantStatus: 204},
		{name: "delete again", method: "DELETE", path: repos + "/team/app/images/" + b, user: "owner", wantStatus: 404, wantBody: []string{`"MANIFEST_UNKNOWN"`}},
	} {
		r := s.do(st)
		if st.name == "images page" {
			firstPage = r.Header.Get("Link")
		}
	}
	if next := strings.TrimSuffix(strings.TrimPrefix(firstPage, "<"), `>; rel="next"`); next != "" {
		s.do(step{name: "next images page", method: "GET", path: next, user: "reader", wantStatus: 200})
	}
	if _, err := s.reg.GetTag(context.Background(), "team/app", "v2"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("tag v2 of a deleted image: %v", err)
	}
	got := s.events()
	if !slices.Contains(got, storage.EventManifestDeleted+" team/app@"+c0) || !slices.Contains(got, storage.EventRepositoryCreated+" team/new") {
		t.Errorf("events %v", got)
	}
	// Three changes of team/new (a replace and two patches); the no-ops
	// and refused requests sent nothing.
	if n := countOf(got, storage.EventRepositoryUpdated+" team/new"); n != 3 {
		t.Errorf("%d update events of team/new, want 3: %v", n, got)
	}
}

// imageSize is what the API reports for an image: manifest, config and
// layers.
func imageSize(t *testing.T, img v1.Image) int64 {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func indexSize(t *testing.T, idx interface{ RawManifest() ([]byte, error) }) int64 {
	t.Helper()
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(raw))
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
