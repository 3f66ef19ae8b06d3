package registry_test

import (
	"testing"

	"github.com/berth-dev/berth/registry/registrytest"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
