package registry_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/events/eventstest"
	"github.com/berth-dev/berth/registry/registrytest"
	"github.com/berth-dev/berth/storage"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
)

// TestDeleteManifestThenGC deletes an image through the registry API and
// shows that garbage collection, past its grace period, stops the
// repository serving the image's own blobs and reclaims them, while an
// image sharing a layer with it still pulls whole.
func TestDeleteManifestThenGC(t *testing.T) {
	clock := eventstest.NewClock(time.Now().UTC())
	srv := registrytest.NewServer(t, &registrytest.Options{Storage: storage.Options{Now: clock.Now}})
	auth := remote.WithAuth(&authn.Basic{Username: registrytest.AdminUser, Password: registrytest.AdminPassword})
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(srv.Host()+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	base, err := random.Image(4096, 1)
	if err != nil {
		t.Fatal(err)
	}
	push := func(tag string) v1.Image {
		l, err := random.Layer(8192, "application/vnd.oci.image.layer.v1.tar")
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(base, l)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref("team/app:"+tag), img, auth); err != nil {
			t.Fatalf("push %s: %v", tag, err)
		}
		return img
	}
	a, b := push("a"), push("b")
	aDigest := mustDigest(t, a)
	aManifest, _ := a.Manifest()
	own := []v1.Hash{aManifest.Config.Digest, aManifest.Layers[1].Digest}
	shared := aManifest.Layers[0].Digest
	if err := remote.Delete(ref("team/app@"+aDigest.String()), auth); err != nil {
		t.Fatalf("DELETE the manifest: %v", err)
	}

	head := func(d v1.Hash) int {
		req, _ := http.NewRequest(http.MethodHead, "http://"+srv.Host()+"/v2/team/app/blobs/"+d.String(), nil)
		req.SetBasicAuth(registrytest.AdminUser, registrytest.AdminPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	clock.Advance(2 * time.Hour)
	st, err := srv.Store.GC(t.Context(), &storage.GCOptions{Grace: time.Hour, SkipOrphans: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.LinksPruned != 2 || st.BlobsDeleted != 3 { // A's config and layer; and its manifest bytes
		t.Errorf("GC = %+v; want 2 links pruned and 3 blobs deleted", st)
	}
	for _, d := range own {
		if code := head(d); code != http.StatusNotFound {
			t.Errorf("HEAD the deleted image's blob %s: %d, want 404", d, code)
		}
		if _, err := srv.Store.StatBlob(t.Context(), digest.Digest(d.String())); err == nil {
			t.Errorf("the deleted image's blob %s is still stored", d)
		}
	}
	if code := head(shared); code != http.StatusOK {
		t.Errorf("HEAD the shared layer: %d, want 200", code)
	}
	got, err := remote.Image(ref("team/app:b"), auth)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("the remaining image does not pull whole: %v", err)
	}
	if want, got := mustDigest(t, b), mustDigest(t, got); want != got {
		t.Fatalf("digest %s, want %s", got, want)
	}
}
