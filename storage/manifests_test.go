package storage_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
)

// withoutHeads hides a backend's driver.ManifestHeads, so the store falls
// back to GetTag and GetManifest.
type withoutHeads struct {
	driver.Metadata
	driver.Registry
}

func TestStatManifest(t *testing.T) {
	for name, wrap := range map[string]func(*memmeta.Metadata) driver.Metadata{
		"ManifestHeads": func(m *memmeta.Metadata) driver.Metadata { return m },
		"fallback":      func(m *memmeta.Metadata) driver.Metadata { return withoutHeads{m, m} },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			// Two stores over one bucket and one metadata backend: two
			// nodes of one registry.
			f := newGCFixture(t, nil)
			other, err := storage.New(f.bucket, wrap(f.meta), &storage.Options{DisableEncryption: true, Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			node, err := storage.New(f.bucket, wrap(f.meta), &storage.Options{DisableEncryption: true, Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer node.Close()

			d1, err := f.push(ctx, "team/app", "v1", 1)
			if err != nil {
				t.Fatal(err)
			}
			d2, err := f.push(ctx, "team/app", "v2", 2)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := node.ResolveManifest(ctx, "team/app", "v1")
			if err != nil {
				t.Fatal(err)
			}
			want := driver.ManifestHead{Digest: d1, MediaType: rec.MediaType, Size: rec.Size}
			for _, ref := range []string{"v1", string(d1)} {
				h, err := node.StatManifest(ctx, "team/app", ref)
				if err != nil || h != want {
					t.Fatalf("StatManifest(%s) = %+v, %v; want %+v", ref, h, err, want)
				}
				b, err := node.ReadManifestHead(ctx, h)
				if err != nil || int64(len(b)) != h.Size {
					t.Fatalf("ReadManifestHead: %d bytes, %v; want %d", len(b), err, h.Size)
				}
			}
			for _, c := range []struct{ repo, ref string }{
				{"team/app", "missing"},
				{"team/app", "sha256:" + strings.Repeat("0", 64)},
				{"team/other", "v1"},
				{"team/other", string(d1)},
			} {
				if _, err := node.StatManifest(ctx, c.repo, c.ref); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("StatManifest(%s, %s): %v, want ErrNotFound", c.repo, c.ref, err)
				}
			}
			for _, ref := range []string{"sha256:xyz", "bad tag", ""} {
				if _, err := node.StatManifest(ctx, "team/app", ref); err == nil || errors.Is(err, storage.ErrNotFound) {
					t.Errorf("StatManifest(%q): %v, want an invalid-argument error", ref, err)
				}
			}

			// Changes made through another node show at once.
			if err := other.SetTag(ctx, "team/app", "v1", d2, "test"); err != nil {
				t.Fatal(err)
			}
			if h, err := node.StatManifest(ctx, "team/app", "v1"); err != nil || h.Digest != d2 {
				t.Fatalf("after moving the tag elsewhere: %+v, %v; want %s", h, err, d2)
			}
			if err := other.DeleteTag(ctx, "team/app", "v1", "test"); err != nil {
				t.Fatal(err)
			}
			if _, err := node.StatManifest(ctx, "team/app", "v1"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("after deleting the tag elsewhere: %v, want ErrNotFound", err)
			}
			if err := other.DeleteManifest(ctx, "team/app", d2, "test"); err != nil {
				t.Fatal(err)
			}
			for _, ref := range []string{"v2", string(d2)} {
				if _, err := node.StatManifest(ctx, "team/app", ref); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("StatManifest(%s) after deleting the manifest elsewhere: %v, want ErrNotFound", ref, err)
				}
			}
		})
	}
}
