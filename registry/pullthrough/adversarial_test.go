package pullthrough_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/registry/pullthrough"
	"github.com/berth-dev/berth/registry/registrytest"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
)

// liar is an upstream that serves content not matching its digests.
func liar(t *testing.T, blobSize int) (srv *httptest.Server, blob digest.Digest, manifestDigest digest.Digest) {
	t.Helper()
	good := bytes.Repeat([]byte("good"), blobSize/4)
	blob = digest.FromBytes(good)
	bad := bytes.Repeat([]byte("evil"), blobSize/4)
	manifest := func(layer digest.Digest) []byte {
		return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
			`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
			layer, blobSize, layer, blobSize)
	}
	honest := manifest(blob)
	manifestDigest = digest.FromBytes(honest)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			_, _ = io.WriteString(w, "{}")
		case strings.HasSuffix(r.URL.Path, "/manifests/v1"):
			// Claims the honest digest, sends other bytes.
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", string(manifestDigest))
			_, _ = w.Write(manifest(digest.FromString("other")))
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			_, _ = w.Write(manifest(digest.FromString("other")))
		case strings.Contains(r.URL.Path, "/blobs/"):
			w.Header().Set("Content-Length", strconv.Itoa(len(bad)))
			_, _ = w.Write(bad)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, blob, manifestDigest
}

// TestLyingUpstream: content that does not match its digest is refused and
// nothing of it is stored; a client streaming such a blob never gets a
// complete, successful response.
func TestLyingUpstream(t *testing.T) {
	srv, blob, md := liar(t, 1<<20)
	m := newMirror(t, []pullthrough.Upstream{{Prefix: "lie/", URL: srv.URL}}, nil)
	ctx := ctxT(t)

	for _, ref := range []string{"v1", string(md)} {
		resp, body := m.get(t, http.MethodGet, "/v2/lie/app/manifests/"+ref)
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("manifest %s with a wrong digest: %s, want 502", ref, resp.Status)
		}
		if _, msg := specError(t, body); !strings.Contains(msg, "does not match") {
			t.Fatalf("message %q", msg)
		}
		if _, err := m.store.ResolveManifest(ctx, "lie/app", ref); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a lying manifest was stored: %v", err)
		}
	}

	resp, err := http.Get(m.URL + "/v2/lie/app/blobs/" + string(blob))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("a blob with the wrong content was served in full (%s, %d bytes)", resp.Status, len(got))
	}
	if int64(len(got)) >= resp.ContentLength {
		t.Fatalf("the client received all %d bytes of unverified content", len(got))
	}
	if _, err := m.store.StatBlob(ctx, blob); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a lying blob was stored: %v", err)
	}
	if _, err := m.store.StatBlob(ctx, digest.FromBytes(bytes.Repeat([]byte("evil"), 1<<18))); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the wrong content was stored under its own digest: %v", err)
	}
	reg, _ := m.store.Registry()
	if _, err := reg.GetRepository(ctx, "lie/app"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("refused content created the repository: %v", err)
	}
}

// TestClientDisconnect: a client that stops reading mid-blob leaves the
// fetch to finish in the background within the budget, or abandoned
// beyond it, with nothing stored and the next pull fetching anew.
func TestClientDisconnect(t *testing.T) {
	up := newUpstream(t, false)
	img, _ := random.Image(8<<20, 1)
	up.push(t, "lib/app:v1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	d := digest.Digest(ld.String())

	readSome := func(m *mirror) {
		t.Helper()
		resp, err := http.Get(m.URL + "/v2/hub/app/blobs/" + ld.String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // gone, with most of the blob unread
	}

	t.Run("finished in the background", func(t *testing.T) {
		m := newMirror(t, []pullthrough.Upstream{hubOf(up)}, nil)
		readSome(m)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := m.store.StatRepoBlob(ctxT(t), "hub/app", d); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the blob was not cached after its client left")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("abandoned beyond the budget", func(t *testing.T) {
		m := newMirror(t, []pullthrough.Upstream{hubOf(up)}, &mirrorOptions{cache: pullthrough.Options{BackgroundBytes: 1 << 20}})
		before := up.n("GET blob")
		readSome(m)
		resp, body := m.get(t, http.MethodGet, "/v2/hub/app/blobs/"+ld.String())
		if resp.StatusCode != http.StatusOK {
			t.Fatal(resp.Status)
		}
		sum := sha256.Sum256(body)
		if "sha256:"+hex.EncodeToString(sum[:]) != ld.String() {
			t.Fatal("wrong content after an abandoned fetch")
		}
		if n := up.n("GET blob") - before; n != 2 {
			t.Fatalf("%d upstream fetches, want 2 (the abandoned one and a new one)", n)
		}
	})
}

// TestVisibility: cached repositories take their upstream's visibility;
// anonymous clients may make the first pull of a public upstream's
// repositories and nothing else.
func TestVisibility(t *testing.T) {
	up := newUpstream(t, false)
	img, _ := random.Image(512, 1)
	up.push(t, "lib/app:v1", img)
	pub := hubOf(up)
	pub.Public = true
	priv := hubOf(up)
	priv.Prefix = "priv/"
	m := newMirror(t, []pullthrough.Upstream{pub, priv}, &mirrorOptions{authorize: true})

	if resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("anonymous pull from a public upstream: %s", resp.Status)
	}
	reg, _ := m.store.Registry()
	if r, err := reg.GetRepository(ctxT(t), "hub/app"); err != nil || r.Visibility != driver.Public {
		t.Fatalf("cached repository of a public upstream: %+v %v", r, err)
	}
	if resp, _ := m.get(t, http.MethodGet, "/v2/priv/app/manifests/v1"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous pull from a private upstream: %s, want 401", resp.Status)
	}
	if _, err := reg.GetRepository(ctxT(t), "priv/app"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("a denied pull created the repository: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, m.URL+"/v2/priv/app/manifests/v1", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	req.SetBasicAuth(registrytest.AdminUser, registrytest.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorized pull from a private upstream: %s", resp.Status)
	}
	if r, err := reg.GetRepository(ctxT(t), "priv/app"); err != nil || r.Visibility != driver.Private {
		t.Fatalf("cached repository of a private upstream: %+v %v", r, err)
	}
}

// TestGarbageCollection: cached content is collected like any other once
// nothing references it, and kept while a cached manifest does, even
// when the manifest was cached before its blobs.
func TestGarbageCollection(t *testing.T) {
	up := newUpstream(t, false)
	img, _ := random.Image(4096, 1)
	md := up.push(t, "lib/app:v1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	m := newMirror(t, []pullthrough.Upstream{hubOf(up)}, nil)
	ctx := ctxT(t)

	if resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v1"); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	gc := func() storage.GCStats {
		t.Helper()
		m.clock.Advance(2 * time.Hour) // past the grace period
		st, err := m.store.GC(ctx, &storage.GCOptions{SkipOrphans: true})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	gc() // the manifest's blobs are not cached yet: nothing to do, nothing broken
	if resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/blobs/"+ld.String()); resp.StatusCode != http.StatusOK {
		t.Fatalf("blob after GC: %s", resp.Status)
	}
	gc()
	if _, err := m.store.StatBlob(ctx, digest.Digest(ld.String())); err != nil {
		t.Fatalf("GC collected a blob a cached manifest references: %v", err)
	}
	// Evicting the image (a delete, as lifecycle policies do) and its
	// blob link lets GC reclaim the layer.
	if resp, _ := m.get(t, http.MethodDelete, "/v2/hub/app/manifests/"+md.String()); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("evict: %s", resp.Status)
	}
	if resp, _ := m.get(t, http.MethodDelete, "/v2/hub/app/blobs/"+ld.String()); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("evict blob: %s", resp.Status)
	}
	if st := gc(); st.BlobsDeleted == 0 {
		t.Fatalf("GC reclaimed nothing after eviction: %+v", st)
	}
	if _, err := m.store.StatBlob(ctx, digest.Digest(ld.String())); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("evicted layer still stored: %v", err)
	}
	// And the next pull caches it again.
	if resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/blobs/"+ld.String()); resp.StatusCode != http.StatusOK {
		t.Fatalf("pull after eviction: %s", resp.Status)
	}
}

// TestChunkedUpstream: an upstream that does not announce the blob's size
// (chunked transfer) is streamed all the same, and the size is checked by
// the digest.
func TestChunkedUpstream(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	d := digest.FromBytes(content)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			_, _ = io.WriteString(w, "{}")
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+string(d)) {
			http.NotFound(w, r)
			return
		}
		for i := 0; i < len(content); i += 64 << 10 {
			_, _ = w.Write(content[i : i+64<<10])
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
	}))
	t.Cleanup(srv.Close)
	m := newMirror(t, []pullthrough.Upstream{{Prefix: "c/", URL: srv.URL}}, nil)
	resp, body := m.get(t, http.MethodGet, "/v2/c/app/blobs/"+string(d))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
		t.Fatalf("chunked upstream: %s, %d bytes", resp.Status, len(body))
	}
	if desc, err := m.store.StatRepoBlob(ctxT(t), "c/app", d); err != nil || desc.Size != int64(len(content)) {
		t.Fatalf("stored: %+v %v", desc, err)
	}
}
