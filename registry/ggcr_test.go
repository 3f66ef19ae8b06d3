package registry_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/registry/registrytest"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestGGCRRoundTrip(t *testing.T) {
	srv := registrytest.NewServer(t, nil)
	auth := remote.WithAuth(&authn.Basic{Username: registrytest.AdminUser, Password: registrytest.AdminPassword})
	ref, err := name.ParseReference(srv.Host()+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(3<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatalf("push: %v", err)
	}
	got, err := remote.Image(ref, auth)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("pulled image invalid: %v", err)
	}
	wantD, _ := img.Digest()
	gotD, _ := got.Digest()
	if wantD != gotD {
		t.Fatalf("digest %s, want %s", gotD, wantD)
	}

	// A multi-platform index.
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	img2, _ := random.Image(1024, 1)
	idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img2, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	iref, _ := name.ParseReference(srv.Host()+"/team/multi:latest", name.Insecure)
	if err := remote.WriteIndex(iref, idx, auth); err != nil {
		t.Fatalf("push index: %v", err)
	}
	gi, err := remote.Index(iref, auth)
	if err != nil {
		t.Fatal(err)
	}
	if want, got := mustDigest(t, idx), mustDigest(t, gi); want != got {
		t.Fatalf("index digest %s, want %s", got, want)
	}
	im, err := gi.IndexManifest()
	if err != nil || len(im.Manifests) != 2 || im.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("index manifest %+v, %v", im, err)
	}
	child, err := gi.Image(im.Manifests[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(child); err != nil {
		t.Fatalf("child invalid: %v", err)
	}
	tags, err := remote.List(iref.Context(), auth)
	if err != nil || len(tags) != 1 || tags[0] != "latest" {
		t.Fatalf("tags %v, %v", tags, err)
	}
	cat, err := remote.Catalog(t.Context(), iref.Context().Registry, auth)
	if err != nil || len(cat) != 2 {
		t.Fatalf("catalog %v, %v", cat, err)
	}
}

func mustDigest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestGGCRReferrersCopyDelete covers, with go-containerregistry's remote
// package, the referrers API (with the artifactType filter), a copy
// between repositories that mounts every blob instead of uploading it, and
// deletes of tags and manifests.
func TestGGCRReferrersCopyDelete(t *testing.T) {
	srv := registrytest.NewServer(t, nil)
	counter := &requestCounter{next: srv.Client().Transport}
	opts := []remote.Option{
		remote.WithAuth(&authn.Basic{Username: registrytest.AdminUser, Password: registrytest.AdminPassword}),
		remote.WithTransport(counter),
	}
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(srv.Host()+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	img, err := random.Image(1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref("team/app:v1"), img, opts...); err != nil {
		t.Fatal(err)
	}
	imgD := mustDigest(t, img)

	// Referrers: an artifact (artifactType from its config media type)
	// and an image, whose artifact type is its config media type.
	desc, err := remote.Head(ref("team/app:v1"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	sbom := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), "application/vnd.example.sbom")
	sbom = mutate.Subject(sbom, *desc).(v1.Image)
	signed, _ := random.Image(256, 1)
	signed = mutate.ConfigMediaType(mutate.MediaType(signed, types.OCIManifestSchema1), types.OCIConfigJSON)
	signed = mutate.Subject(signed, *desc).(v1.Image)
	for _, a := range []v1.Image{sbom, signed} {
		if err := remote.Write(ref("team/app@"+mustDigest(t, a).String()), a, opts...); err != nil {
			t.Fatal(err)
		}
	}
	subject := ref("team/app").Context().Digest(imgD.String())
	all := referrers(t, subject, opts...)
	if len(all) != 2 {
		t.Fatalf("referrers: %+v", all)
	}
	at := map[v1.Hash]string{}
	for _, d := range all {
		at[d.Digest] = d.ArtifactType
	}
	if at[mustDigest(t, sbom)] != "application/vnd.example.sbom" || at[mustDigest(t, signed)] != string(types.OCIConfigJSON) {
		t.Fatalf("referrers' artifact types: %v", at)
	}
	filtered := referrers(t, subject, append(opts, remote.WithFilter("artifactType", "application/vnd.example.sbom"))...)
	if len(filtered) != 1 || filtered[0].Digest != mustDigest(t, sbom) {
		t.Fatalf("referrers filtered by artifactType: %+v", filtered)
	}

	// Copy to another repository: every blob is mounted, none uploaded.
	src, err := remote.Image(ref("team/app:v1"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	counter.reset()
	if err := remote.Write(ref("other/app:v1"), src, opts...); err != nil {
		t.Fatal(err)
	}
	if got := mustDigest(t, src); got != imgD {
		t.Fatalf("copy digest %s, want %s", got, imgD)
	}
	if counter.mounted != 3 || counter.uploaded != 0 {
		t.Fatalf("copy mounted %d blobs and uploaded %d, want 3 and 0", counter.mounted, counter.uploaded)
	}

	// Deletes: a tag, then a manifest.
	if err := remote.Tag(ref("other/app:v1").Context().Tag("extra"), src, opts...); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(ref("other/app:extra"), opts...); err != nil {
		t.Fatal(err)
	}
	if tags, err := remote.List(ref("other/app").Context(), opts...); err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("tags after deleting one: %v, %v", tags, err)
	}
	if err := remote.Delete(ref("other/app@"+imgD.String()), opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref("other/app@"+imgD.String()), opts...); !isNotFound(err) {
		t.Fatalf("HEAD after delete: %v, want 404", err)
	}
	if _, err := remote.Head(ref("team/app@"+imgD.String()), opts...); err != nil {
		t.Fatalf("the source repository lost the image: %v", err)
	}
}

func referrers(t *testing.T, d name.Digest, opts ...remote.Option) []v1.Descriptor {
	t.Helper()
	idx, err := remote.Referrers(d, opts...)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// requestCounter counts blob mounts (POST …?mount= answered 201) and blob
// uploads (PUT …/blobs/uploads/…).
type requestCounter struct {
	next              http.RoundTripper
	mu                sync.Mutex
	mounted, uploaded int
}

func (c *requestCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mounted, c.uploaded = 0, 0
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated:
		c.mounted++
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/"):
		c.uploaded++
	}
	return resp, nil
}
