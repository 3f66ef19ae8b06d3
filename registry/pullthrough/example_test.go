package pullthrough_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/registry/pullthrough"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// serve runs a registry over an in-memory store, optionally mirroring
// upstreams, and returns its host:port.
func serve(ctx context.Context, ups []pullthrough.Upstream) (string, *storage.Store, func()) {
	meta := memmeta.New()
	store, err := storage.Open(ctx, "mem://", meta, &storage.Options{DisableEncryption: true})
	if err != nil {
		log.Fatal(err)
	}
	opts := &registry.Options{Authorizer: authtest.AllowAll{}}
	if ups != nil {
		cache, err := pullthrough.New(store, ups, nil)
		if err != nil {
			log.Fatal(err)
		}
		opts.Mirror = cache
	}
	h, err := registry.New(store, opts)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h)
	return strings.TrimPrefix(srv.URL, "http://"), store, func() { srv.Close(); store.Close(); meta.Close() }
}

// A registry mirroring another under "hub/": the first pull of
// hub/app:v1 fetches library/app:v1 from the upstream and stores it.
func Example() {
	ctx := context.Background()
	upHost, _, stopUp := serve(ctx, nil)
	defer stopUp()
	img, _ := random.Image(1024, 2)
	upRef, _ := name.ParseReference(upHost+"/library/app:v1", name.Insecure)
	if err := remote.Write(upRef, img); err != nil {
		log.Fatal(err)
	}

	host, store, stop := serve(ctx, []pullthrough.Upstream{{Prefix: "hub/", URL: "http://" + upHost, Remote: "library/"}})
	defer stop()
	ref, _ := name.ParseReference(host+"/hub/app:v1", name.Insecure)
	pulled, err := remote.Image(ref)
	if err != nil {
		log.Fatal(err)
	}
	want, _ := img.Digest()
	got, _ := pulled.Digest()
	fmt.Println("same image:", got == want)
	m, err := store.ResolveManifest(ctx, "hub/app", "v1")
	fmt.Println("cached:", err == nil && m.Digest.String() == want.String())
	// Output:
	// same image: true
	// cached: true
}
