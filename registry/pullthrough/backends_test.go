package pullthrough_test

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/registry/pullthrough"
	"github.com/berth-dev/berth/storage"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestSQLBackends runs the cache over the SQL metadata backends a server
// uses: an index pull, concurrent misses of one blob, a tag moved
// upstream and revalidated, and garbage collection.
func TestSQLBackends(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string {
			return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "meta.db"))
		}},
		{"postgres", func(t *testing.T) string { return testsvc.Postgres(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			up := newUpstream(t, true)
			idx, _ := random.Index(2048, 2, 2)
			up.pushIndex(t, "lib/multi:latest", idx)
			big, _ := random.Image(2<<20, 1)
			up.push(t, "lib/app:v1", big)
			cfg := hubOf(up)
			cfg.TagTTL = time.Minute
			m := newMirror(t, []pullthrough.Upstream{cfg}, &mirrorOptions{metaURL: b.url(t)})

			got, err := remote.Index(m.ref(t, "hub/multi:latest"))
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Index(got); err != nil {
				t.Fatalf("index through the cache: %v", err)
			}

			layers, _ := big.Layers()
			ld, _ := layers[0].Digest()
			rc, _ := layers[0].Compressed()
			orig, _ := io.ReadAll(rc)
			up.delay.Store(int64(200 * time.Millisecond))
			var wg sync.WaitGroup
			for range 6 {
				wg.Go(func() {
					resp, err := http.Get(m.URL + "/v2/hub/app/blobs/" + ld.String())
					if err != nil {
						t.Error(err)
						return
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(b, orig) {
						t.Errorf("concurrent miss: %s %v", resp.Status, err)
					}
				})
			}
			wg.Wait()
			up.delay.Store(0)
			if n := up.n("GET blob"); n != 1+2*3 { // the index's 2×(config+2 layers), then the big layer once
				t.Fatalf("%d upstream blob fetches, want 7", n)
			}

			if resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v1"); resp.StatusCode != http.StatusOK {
				t.Fatal(resp.Status)
			}
			moved, _ := random.Image(512, 1)
			want := up.push(t, "lib/app:v1", moved)
			m.clock.Advance(2 * time.Minute)
			resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v1")
			if resp.Header.Get("Docker-Content-Digest") != want.String() {
				t.Fatalf("revalidated tag: %s, want %s", resp.Header.Get("Docker-Content-Digest"), want)
			}

			m.clock.Advance(2 * time.Hour)
			if _, err := m.store.GC(t.Context(), &storage.GCOptions{SkipOrphans: true}); err != nil {
				t.Fatal(err)
			}
			if err := validate.Index(got); err != nil {
				t.Fatalf("index after GC: %v", err)
			}
		})
	}
}
