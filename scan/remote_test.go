package scan_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestRemoteSource(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	img, _ := random.Image(64, 1)
	idx, _ := random.Index(64, 1, 2)
	ref, _ := name.ParseReference(u.Host+"/team/app:1", name.Insecure)
	iref, _ := name.ParseReference(u.Host+"/team/app:multi", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(iref, idx); err != nil {
		t.Fatal(err)
	}
	src := &scan.RemoteSource{Registry: u.Host, Insecure: true}
	ctx := context.Background()
	d, _ := img.Digest()
	if got, gotIdx, err := src.Open(ctx, "team/app", d); err != nil || got == nil || gotIdx != nil {
		t.Fatalf("image: %v %v %v", got, gotIdx, err)
	}
	id, _ := idx.Digest()
	if got, gotIdx, err := src.Open(ctx, "team/app", id); err != nil || got != nil || gotIdx == nil {
		t.Fatalf("index: %v %v %v", got, gotIdx, err)
	}
	missing := v1.Hash{Algorithm: "sha256", Hex: "0000000000000000000000000000000000000000000000000000000000000000"}
	if _, _, err := src.Open(ctx, "team/app", missing); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("missing manifest: %v", err)
	}
}
