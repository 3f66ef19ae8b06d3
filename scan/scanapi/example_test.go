package scanapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/scanapi"
	"github.com/berth-dev/berth/scan/scantest"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/opencontainers/go-digest"
)

type oneImage struct{ img v1.Image }

func (o oneImage) Open(ctx context.Context, repo string, d v1.Hash) (v1.Image, v1.ImageIndex, error) {
	return o.img, nil, nil
}

// The Handler serves an image's report beside the registry: Pending until
// the pipeline has scanned it, then the findings in the format asked for.
func ExampleHandler() {
	ctx := context.Background()
	now := time.Now().UTC()
	meta := memmeta.New() // sqlmeta in production: the same store as the registry's
	_ = meta.CreateRepository(ctx, &driver.Repository{Name: "team/app", Visibility: driver.Private, CreatedAt: now, UpdatedAt: now})
	img := empty.Image
	d, _ := img.Digest()
	_, _ = meta.PutManifest(ctx, &driver.Manifest{Repository: "team/app", Digest: digest.Digest(d.String()),
		MediaType: "application/vnd.oci.image.manifest.v1+json", PushedAt: now})

	fake := scantest.NewScanner(scan.Info{Name: "example", Version: "1"})
	fake.SetResult(d, &scan.Report{Vulnerabilities: []scan.Vulnerability{{ID: "CVE-2024-0001",
		Package: scan.Package{Name: "openssl", Version: "3.0.0"}, FixedVersion: "3.0.1",
		Ratings: []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}}}})
	p, _ := scan.NewPipeline(fake, oneImage{img}, meta, meta, nil)
	defer p.Close()
	allowAll := func(r *http.Request, repo string, write bool) error { return nil } // registryd asks the registry's authorizer
	h, _ := scanapi.NewHandler(p, meta, allowAll, nil)

	get := func(query string) string {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/repositories/team/app/images/"+d.String()+"/vulnerabilities"+query, nil))
		return fmt.Sprint(w.Code, " ", w.Header().Get("Content-Type"))
	}
	fmt.Println(get(""), "(Pending)")
	fmt.Println(get("?format=sarif"), "(no report to encode yet)")

	p.Start(ctx) // the start-up sweep finds the image without a report
	for r, _ := p.Report(ctx, d); r.Status == scan.StatusPending; r, _ = p.Report(ctx, d) {
		time.Sleep(time.Millisecond)
	}
	fmt.Println(get("?format=sarif"))
	fmt.Println(get("?format=cyclonedx"))
	// Output:
	// 200 application/json (Pending)
	// 409 application/json (no report to encode yet)
	// 200 application/sarif+json
	// 200 application/vnd.cyclonedx+json; version=1.6
}
