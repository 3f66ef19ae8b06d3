package storage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// TestCacheManifest: a pull-through cache stores manifests before the
// content they list, which pushes may not do; everything else is checked
// as for a push, and the references are recorded for garbage collection.
func TestCacheManifest(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, nil)
	layer := digest.FromString("layer")
	cfg := digest.FromString("config")
	child := digest.FromString("child")
	const mt = "application/vnd.oci.image.manifest.v1+json"
	img := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":6},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":5}]}`, mt, cfg, layer)
	idx := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":%q,"digest":%q,"size":10,"platform":{"os":"linux","architecture":"arm64"}}]}`, mt, child)

	var me *storage.ManifestError
	if _, err := f.store.PutManifest(ctx, storage.ManifestInput{Repository: "hub/app", Reference: "v1", ContentType: mt, Body: img}); !errors.As(err, &me) || len(me.Missing) != 2 {
		t.Fatalf("push of a manifest without its blobs: %v", err)
	}
	rec, err := f.store.CacheManifest(ctx, storage.ManifestInput{Repository: "hub/app", Reference: "v1", ContentType: mt, Body: img, By: "cache"})
	if err != nil {
		t.Fatalf("cache a manifest without its blobs: %v", err)
	}
	if len(rec.Blobs) != 2 || rec.ConfigDigest != cfg {
		t.Fatalf("record: %+v", rec)
	}
	if _, manifests, err := mustRegistry(t, f).CountBlobReferences(ctx, layer); err != nil || manifests != 1 {
		t.Fatalf("the layer's reference is not recorded: %d %v", manifests, err)
	}
	if got, err := f.store.ResolveManifest(ctx, "hub/app", "v1"); err != nil || got.Digest != rec.Digest {
		t.Fatalf("tag: %v %v", got, err)
	}
	irec, err := f.store.CacheManifest(ctx, storage.ManifestInput{Repository: "hub/app", Reference: "latest", ContentType: "application/vnd.oci.image.index.v1+json", Body: idx})
	if err != nil {
		t.Fatalf("cache an index without its children: %v", err)
	}
	if len(irec.Children) != 1 || irec.Children[0] != child || len(irec.Platforms) != 1 {
		t.Fatalf("index record: %+v", irec)
	}

	// What is checked for pushes still is.
	var dm *storage.DigestMismatchError
	if _, err := f.store.CacheManifest(ctx, storage.ManifestInput{Repository: "hub/app", Reference: string(digest.FromString("x")), ContentType: mt, Body: img}); !errors.As(err, &dm) {
		t.Fatalf("digest mismatch: %v", err)
	}
	if _, err := f.store.CacheManifest(ctx, storage.ManifestInput{Repository: "hub/app", Reference: "v2", ContentType: mt, Body: []byte(`{"schemaVersion":1}`)}); !errors.As(err, &me) {
		t.Fatalf("invalid manifest: %v", err)
	}
	if _, err := f.store.ResolveManifest(ctx, "hub/app", "v2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an invalid manifest was tagged: %v", err)
	}
}

// TestEnsureRepositoryLike creates a repository with the settings given,
// and leaves an existing one alone.
func TestEnsureRepositoryLike(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, nil)
	r, err := f.store.EnsureRepositoryLike(ctx, &driver.Repository{Name: "hub/app", Visibility: driver.Public, Description: "cache"}, "test")
	if err != nil || r.Visibility != driver.Public || r.Description != "cache" {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = f.store.EnsureRepositoryLike(ctx, &driver.Repository{Name: "hub/app", Visibility: driver.Private}, "test")
	if err != nil || r.Visibility != driver.Public {
		t.Fatalf("an existing repository was changed: %+v %v", r, err)
	}
	if r, err := f.store.EnsureRepository(ctx, "team/app", "test"); err != nil || r.Visibility != driver.Private {
		t.Fatalf("default: %+v %v", r, err)
	}
	if _, err := f.store.EnsureRepositoryLike(ctx, &driver.Repository{Name: "Bad//Name"}, "test"); err == nil {
		t.Fatal("invalid name accepted")
	}
}

func mustRegistry(t *testing.T, f *gcFixture) driver.Registry {
	t.Helper()
	r, err := f.store.Registry()
	if err != nil {
		t.Fatal(err)
	}
	return r
}
