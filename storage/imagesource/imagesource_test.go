package imagesource_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/berth-dev/berth/registry/registrytest"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/imagesource"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestOpen pushes an image and an index through the registry API and
// reads them back from the store, without HTTP.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	srv := registrytest.NewServer(t, nil)
	auth := remote.WithAuth(&authn.Basic{Username: registrytest.AdminUser, Password: registrytest.AdminPassword})
	idx, err := random.Index(512, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(srv.Host()+"/team/app:multi", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, auth); err != nil {
		t.Fatal(err)
	}
	src, err := imagesource.New(srv.Store)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	img, gotIdx, err := src.Open(ctx, "team/app", d)
	if err != nil || img != nil || gotIdx == nil {
		t.Fatalf("Open(index) = %v, %v, %v", img, gotIdx, err)
	}
	if err := validate.Index(gotIdx); err != nil {
		t.Errorf("index read from the store is invalid: %v", err)
	}
	im, _ := idx.IndexManifest()
	child := im.Manifests[0].Digest
	img, gotIdx, err = src.Open(ctx, "team/app", child)
	if err != nil || img == nil || gotIdx != nil {
		t.Fatalf("Open(image) = %v, %v, %v", img, gotIdx, err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("image read from the store is invalid: %v", err)
	}
	ls, _ := img.Layers()
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, rc); err != nil || n == 0 {
		t.Errorf("layer read: %d bytes, %v", n, err)
	}
	rc.Close()

	// Another repository does not hold the manifest: not found, never
	// read across repositories.
	if _, _, err := src.Open(ctx, "other/app", child); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Open through another repository = %v, want ErrNotFound", err)
	}
	if _, _, err := src.Open(ctx, "team/app", v1.Hash{Algorithm: "sha256", Hex: "0000000000000000000000000000000000000000000000000000000000000000"}); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Open of an unknown digest = %v, want ErrNotFound", err)
	}
	if _, err := imagesource.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}
