package pullthrough_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/registry/pullthrough"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
)

// TestTagPull pulls an image by tag through the cache, with each upstream
// authentication flow, and checks what was stored.
func TestTagPull(t *testing.T) {
	for _, flow := range []string{"basic", "bearer"} {
		t.Run(flow, func(t *testing.T) {
			up := newUpstream(t, flow == "bearer")
			img, err := random.Image(1<<16, 3)
			if err != nil {
				t.Fatal(err)
			}
			want := up.push(t, "lib/app:v1", img)
			m := newMirror(t, []pullthrough.Upstream{hubOf(up)}, nil)

			got, err := remote.Image(m.ref(t, "hub/app:v1"))
			if err != nil {
				t.Fatalf("pull through the cache: %v", err)
			}
			if d, _ := got.Digest(); d != want {
				t.Fatalf("pulled %s, want %s", d, want)
			}
			if err := validate.Image(got); err != nil { // reads and verifies every blob
				t.Fatalf("pulled image does not validate: %v", err)
			}
			if flow == "bearer" && up.n("GET token") == 0 {
				t.Fatal("the upstream's token service was never asked: the Bearer flow was not exercised")
			}
			// Stored: the tag, the manifest and every blob, linked to the
			// cached repository, which was created private.
			ctx := ctxT(t)
			rec, err := m.store.ResolveManifest(ctx, "hub/app", "v1")
			if err != nil || string(rec.Digest) != want.String() {
				t.Fatalf("stored tag: %v %v", rec, err)
			}
			layers, _ := img.Layers()
			for _, l := range layers {
				ld, _ := l.Digest()
				rd, err := m.store.OpenBlob(ctx, digest.Digest(ld.String()), 0, -1)
				if err != nil {
					t.Fatalf("layer %s not stored: %v", ld, err)
				}
				stored, _ := io.ReadAll(rd)
				rd.Close()
				orig, _ := l.Compressed()
				ob, _ := io.ReadAll(orig)
				if !bytes.Equal(stored, ob) {
					t.Fatalf("layer %s: stored bytes differ from the upstream's", ld)
				}
				if _, err := m.store.StatRepoBlob(ctx, "hub/app", digest.Digest(ld.String())); err != nil {
					t.Fatalf("layer %s not linked to hub/app: %v", ld, err)
				}
			}
			reg, _ := m.store.Registry()
			repo, err := reg.GetRepository(ctx, "hub/app")
			if err != nil || repo.Visibility != driver.Private {
				t.Fatalf("cached repository: %+v %v, want private", repo, err)
			}

			// A second pull is served from the store.
			before := up.n("GET blob") + up.n("GET manifest")
			again, err := remote.Image(m.ref(t, "hub/app:v1"))
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(again); err != nil {
				t.Fatal(err)
			}
			if after := up.n("GET blob") + up.n("GET manifest"); after != before {
				t.Fatalf("second pull fetched from the upstream (%d → %d requests)", before, after)
			}
		})
	}
}

// TestDigestPull pulls by digest: no tag is created, and once cached the
// manifest is never asked for again, however old.
func TestDigestPull(t *testing.T) {
	up := newUpstream(t, false)
	img, _ := random.Image(1024, 2)
	d := up.push(t, "lib/app:v1", img)
	m := newMirror(t, []pullthrough.Upstream{hubOf(up)}, nil)
	got, err := remote.Image(m.ref(t, "hub/app@"+d.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatal(err)
	}
	reg, _ := m.store.Registry()
	if _, err := reg.GetTag(ctxT(t), "hub/app", "v1"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("pull by digest created a tag: %v", err)
	}
	m.clock.Advance(365 * 24 * time.Hour)
	n := up.n("GET manifest") + up.n("HEAD manifest")
	resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/manifests/"+d.String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cached digest: %s", resp.Status)
	}
	if got := up.n("GET manifest") + up.n("HEAD manifest"); got != n {
		t.Fatalf("a cached digest was revalidated upstream")
	}
}

// TestIndexPull pulls a multi-platform index; its children are fetched by
// digest when the client asks for them.
func TestIndexPull(t *testing.T) {
	up := newUpstream(t, true)
	idx, err := random.Index(2048, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := up.pushIndex(t, "lib/multi:latest", idx)
	m := newMirror(t, []pullthrough.Upstream{hubOf(up)}, nil)

	// The index alone first: it is stored before its children.
	resp, body := m.get(t, http.MethodGet, "/v2/hub/multi/manifests/latest")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != want.String() {
		t.Fatalf("index: %s %s", resp.Status, resp.Header.Get("Docker-Content-Digest"))
	}
	if digest.FromBytes(body).String() != want.String() {
		t.Fatal("index bytes do not match their digest")
	}
	im, _ := idx.IndexManifest()
	if _, err := m.store.ResolveManifest(ctxT(t), "hub/multi", im.Manifests[0].Digest.String()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a child was stored before anyone asked for it: %v", err)
	}
	got, err := remote.Index(m.ref(t, "hub/multi:latest"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(got); err != nil { // fetches every child and blob
		t.Fatalf("index through the cache: %v", err)
	}
	for _, c := range im.Manifests {
		if _, err := m.store.ResolveManifest(ctxT(t), "hub/multi", c.Digest.String()); err != nil {
			t.Fatalf("child %s not cached: %v", c.Digest, err)
		}
	}
	rec, _ := m.store.ResolveManifest(ctxT(t), "hub/multi", "latest")
	if len(rec.Children) != 3 {
		t.Fatalf("index record lists %d children, want 3", len(rec.Children))
	}
}

// TestBlobStreamedWhileStored fetches a large blob through the cache: the
// client gets the upstream's bytes, the store holds the same bytes, the
// upstream sends them once.
func TestBlobStreamedWhileStored(t *testing.T) {
	up := newUpstream(t, false)
	img, _ := random.Image(8<<20, 1)
	up.push(t, "lib/big:v1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	rc, _ := layers[0].Compressed()
	orig, _ := io.ReadAll(rc)
	m := newMirror(t, []pullthrough.Upstream{hubOf(up)}, nil)

	path := "/v2/hub/big/blobs/" + ld.String()
	resp, body := m.get(t, http.MethodGet, path)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, orig) {
		t.Fatalf("blob through the cache: %s, %d bytes (want %d)", resp.Status, len(body), len(orig))
	}
	if resp.Header.Get("Docker-Content-Digest") != ld.String() || resp.ContentLength != int64(len(orig)) {
		t.Fatalf("headers: %v", resp.Header)
	}
	rd, err := m.store.OpenBlob(ctxT(t), digest.Digest(ld.String()), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(rd)
	rd.Close()
	if !bytes.Equal(stored, orig) {
		t.Fatal("stored bytes differ from the upstream's")
	}
	if n := up.n("GET blob"); n != 1 {
		t.Fatalf("upstream sent the blob %d times, want 1", n)
	}
	// Served from the store now, ranges included.
	req, _ := http.NewRequest(http.MethodGet, m.URL+path, nil)
	req.Header.Set("Range", "bytes=10-19")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != http.StatusPartialContent || !bytes.Equal(part, orig[10:20]) {
		t.Fatalf("range from the cache: %s %q", r2.Status, part)
	}
	if n := up.n("GET blob"); n != 1 {
		t.Fatalf("upstream asked again for a cached blob (%d GETs)", n)
	}

	// Another cached repository holding the same content links it after
	// a HEAD, without fetching it again.
	up.push(t, "lib/big2:v1", img)
	resp, body = m.get(t, http.MethodGet, "/v2/hub/big2/blobs/"+ld.String())
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, orig) {
		t.Fatalf("shared blob: %s", resp.Status)
	}
	if n := up.n("GET blob"); n != 1 || up.n("HEAD blob") == 0 {
		t.Fatalf("shared blob: %d GETs, %d HEADs upstream; want 1 GET and a HEAD", n, up.n("HEAD blob"))
	}
}

// TestConcurrentMisses sends many requests for one uncached blob at once:
// the upstream sends it once, every client gets it whole.
func TestConcurrentMisses(t *testing.T) {
	up := newUpstream(t, false)
	img, _ := random.Image(4<<20, 1)
	up.push(t, "lib/app:v1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	rc, _ := layers[0].Compressed()
	orig, _ := io.ReadAll(rc)
	m := newMirror(t, []pullthrough.Upstream{hubOf(up)}, nil)
	up.delay.Store(int64(300 * time.Millisecond)) // the misses overlap

	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			resp, err := http.Get(m.URL + "/v2/hub/app/blobs/" + ld.String())
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				errs <- err
				return
			}
			if resp.StatusCode != http.StatusOK || !bytes.Equal(b, orig) {
				errs <- errors.New("wrong answer: " + resp.Status)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := up.n("GET blob"); got != 1 {
		t.Fatalf("%d concurrent misses made %d upstream fetches, want 1", n, got)
	}

	// Manifests too.
	want, _ := img.Digest()
	manifests := up.n("GET manifest")
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, m.URL+"/v2/hub/app/manifests/v1", nil)
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != want.String() {
				t.Errorf("concurrent manifest miss: %s %s", resp.Status, resp.Header.Get("Docker-Content-Digest"))
			}
		})
	}
	wg.Wait()
	if got := up.n("GET manifest") - manifests; got != 1 {
		t.Fatalf("%d concurrent manifest misses made %d upstream fetches, want 1", n, got)
	}
}

// TestTagTTL revalidates a cached tag after its TTL, and only then.
func TestTagTTL(t *testing.T) {
	up := newUpstream(t, true)
	img1, _ := random.Image(512, 1)
	img2, _ := random.Image(512, 1)
	d1 := up.push(t, "lib/app:v1", img1)
	cfg := hubOf(up)
	cfg.TagTTL = 10 * time.Minute
	m := newMirror(t, []pullthrough.Upstream{cfg}, nil)
	digestOf := func() string {
		t.Helper()
		resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v1")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("pull: %s", resp.Status)
		}
		return resp.Header.Get("Docker-Content-Digest")
	}
	if got := digestOf(); got != d1.String() {
		t.Fatalf("first pull %s, want %s", got, d1)
	}
	d2 := up.push(t, "lib/app:v1", img2) // the tag moves upstream
	gets, heads := up.n("GET manifest"), up.n("HEAD manifest")

	m.clock.Advance(9 * time.Minute)
	if got := digestOf(); got != d1.String() {
		t.Fatalf("within the TTL: %s, want the cached %s", got, d1)
	}
	if up.n("GET manifest") != gets || up.n("HEAD manifest") != heads {
		t.Fatal("a tag within its TTL was revalidated")
	}

	m.clock.Advance(2 * time.Minute)
	if got := digestOf(); got != d2.String() {
		t.Fatalf("after the TTL: %s, want the moved tag's %s", got, d2)
	}
	if up.n("HEAD manifest") != heads+1 || up.n("GET manifest") != gets+1 {
		t.Fatalf("revalidation: %d HEADs, %d GETs; want 1 and 1", up.n("HEAD manifest")-heads, up.n("GET manifest")-gets)
	}
	reg, _ := m.store.Registry()
	hist, _, err := reg.ListTagHistory(ctxT(t), "hub/app", "v1", 0, 10)
	if err != nil || len(hist) != 2 || hist[1].New != digest.Digest(d2.String()) {
		t.Fatalf("tag history: %v %v", hist, err)
	}

	// Unchanged upstream: a HEAD, no GET.
	gets, heads = up.n("GET manifest"), up.n("HEAD manifest")
	m.clock.Advance(11 * time.Minute)
	if got := digestOf(); got != d2.String() {
		t.Fatal(got)
	}
	if up.n("HEAD manifest") != heads+1 || up.n("GET manifest") != gets {
		t.Fatal("an unchanged tag was fetched again instead of confirmed by HEAD")
	}
}

// TestUpstreamDown serves cached content while the upstream fails or is
// gone, and answers 502 for what is not cached.
func TestUpstreamDown(t *testing.T) {
	up := newUpstream(t, false)
	img, _ := random.Image(1<<16, 2)
	d := up.push(t, "lib/app:v1", img)
	up.push(t, "lib/app:v2", img)
	cfg := hubOf(up)
	cfg.TagTTL = time.Minute
	m := newMirror(t, []pullthrough.Upstream{cfg}, nil)
	got, err := remote.Image(m.ref(t, "hub/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatal(err)
	}

	pullCached := func(why string) {
		t.Helper()
		m.clock.Advance(2 * time.Minute) // stale: the cache asks the upstream first
		img, err := remote.Image(m.ref(t, "hub/app:v1"))
		if err != nil {
			t.Fatalf("%s: cached tag not served: %v", why, err)
		}
		if dd, _ := img.Digest(); dd != d {
			t.Fatalf("%s: %s, want %s", why, dd, d)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("%s: %v", why, err)
		}
	}
	uncached := func(why string) {
		t.Helper()
		resp, body := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v2")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("%s: uncached tag: %s, want 502", why, resp.Status)
		}
		if code, _ := specError(t, body); code != "UNKNOWN" {
			t.Fatalf("%s: code %s", why, code)
		}
	}

	up.mode.Store("503")
	heads := up.n("HEAD manifest")
	pullCached("upstream answering 503")
	if up.n("HEAD manifest") == heads {
		t.Fatal("the stale tag was served without asking the upstream")
	}
	// Within another TTL, the upstream is not asked again.
	heads = up.n("HEAD manifest")
	if resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v1"); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	if up.n("HEAD manifest") != heads {
		t.Fatal("a tag the upstream just failed to revalidate was asked for again at once")
	}
	uncached("upstream answering 503")

	up.mode.Store("")
	up.Close() // connection refused from now on
	pullCached("upstream gone")
	uncached("upstream gone")
}

// TestUpstreamErrors passes the upstream's 4xx answers through.
func TestUpstreamErrors(t *testing.T) {
	up := newUpstream(t, false)
	img, _ := random.Image(512, 1)
	up.push(t, "lib/app:v1", img)
	up.push(t, "other/app:v1", img)

	t.Run("404", func(t *testing.T) {
		m := newMirror(t, []pullthrough.Upstream{hubOf(up)}, nil)
		resp, body := m.get(t, http.MethodGet, "/v2/hub/app/manifests/nope")
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown tag: %s", resp.Status)
		}
		if code, _ := specError(t, body); code != "MANIFEST_UNKNOWN" {
			t.Fatalf("unknown tag: code %s", code)
		}
		resp, body = m.get(t, http.MethodGet, "/v2/hub/app/blobs/sha256:"+strings.Repeat("0", 64))
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown blob: %s", resp.Status)
		}
		if code, _ := specError(t, body); code != "BLOB_UNKNOWN" {
			t.Fatalf("unknown blob: code %s", code)
		}
		reg, _ := m.store.Registry()
		if _, err := reg.GetRepository(ctxT(t), "hub/app"); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("a failed pull created the repository: %v", err)
		}
	})
	for _, flow := range []string{"basic", "bearer"} {
		t.Run("401-"+flow, func(t *testing.T) {
			up := up
			if flow == "bearer" {
				up = newUpstream(t, true)
			}
			cfg := hubOf(up)
			cfg.Password = "wrong"
			m := newMirror(t, []pullthrough.Upstream{cfg}, nil)
			resp, body := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v1")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("bad upstream credentials: %s", resp.Status)
			}
			if code, _ := specError(t, body); code != "UNAUTHORIZED" {
				t.Fatalf("code %s", code)
			}
			if ch := resp.Header.Get("WWW-Authenticate"); ch == "" || strings.Contains(ch, up.URL) {
				t.Fatalf("challenge %q: want this registry's, not the upstream's", ch)
			}
		})
	}
	t.Run("403", func(t *testing.T) {
		cfg := hubOf(up)
		cfg.Username, cfg.Password = readerUser, readerPass // may pull other/* only
		m := newMirror(t, []pullthrough.Upstream{cfg, {Prefix: "o/", URL: up.URL, Remote: "other/", Username: readerUser, Password: readerPass}}, nil)
		resp, body := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v1")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("denied upstream: %s", resp.Status)
		}
		if code, _ := specError(t, body); code != "DENIED" {
			t.Fatalf("code %s", code)
		}
		if resp, _ := m.get(t, http.MethodGet, "/v2/o/app/manifests/v1"); resp.StatusCode != http.StatusOK {
			t.Fatalf("allowed upstream repository: %s", resp.Status)
		}
	})
	t.Run("429", func(t *testing.T) {
		cfg := hubOf(up)
		cfg.TagTTL = time.Minute
		m := newMirror(t, []pullthrough.Upstream{cfg}, nil)
		if resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v1"); resp.StatusCode != http.StatusOK {
			t.Fatal(resp.Status)
		}
		up.mode.Store("429")
		defer up.mode.Store("")
		resp, body := m.get(t, http.MethodGet, "/v2/hub/other/manifests/v1")
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" {
			t.Fatalf("throttled upstream: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
		}
		if code, msg := specError(t, body); code != "TOOMANYREQUESTS" || msg != "slow down" {
			t.Fatalf("body: %s %s", code, msg)
		}
		m.clock.Advance(2 * time.Minute)
		if resp, _ := m.get(t, http.MethodGet, "/v2/hub/app/manifests/v1"); resp.StatusCode != http.StatusOK {
			t.Fatalf("stale tag while throttled: %s, want it served from the cache", resp.Status)
		}
	})
}

// TestReadOnly refuses pushes into cached repositories.
func TestReadOnly(t *testing.T) {
	up := newUpstream(t, false)
	m := newMirror(t, []pullthrough.Upstream{hubOf(up)}, nil)
	for _, c := range []struct{ method, path string }{
		{http.MethodPut, "/v2/hub/app/manifests/v1"},
		{http.MethodPost, "/v2/hub/app/blobs/uploads/"},
		{http.MethodPost, "/v2/hub/app/blobs/uploads/?mount=sha256:" + strings.Repeat("a", 64) + "&from=team/app"},
		{http.MethodPatch, "/v2/hub/app/blobs/uploads/abc"},
		{http.MethodPut, "/v2/hub/app/blobs/uploads/abc?digest=sha256:" + strings.Repeat("a", 64)},
	} {
		resp, body := m.get(t, c.method, c.path)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%s %s: %s, want 405", c.method, c.path, resp.Status)
		}
		if code, _ := specError(t, body); code != "UNSUPPORTED" {
			t.Fatalf("%s %s: code %s", c.method, c.path, code)
		}
	}
	// Other repositories still take pushes.
	img, _ := random.Image(256, 1)
	if err := remote.Write(m.ref(t, "team/app:v1"), img); err != nil {
		t.Fatalf("push outside the cache: %v", err)
	}
}

// TestNewValidates refuses configurations that cannot work, with a clear
// error, and never shows a password.
func TestNewValidates(t *testing.T) {
	m := newMirror(t, nil, nil)
	for _, c := range []struct {
		up   pullthrough.Upstream
		want string
	}{
		{pullthrough.Upstream{Prefix: "hub", URL: "https://r.example"}, "prefix"},
		{pullthrough.Upstream{Prefix: "Hub/", URL: "https://r.example"}, "prefix"},
		{pullthrough.Upstream{Prefix: "hub/", URL: "https://r.example", Remote: "library"}, "remote prefix"},
		{pullthrough.Upstream{Prefix: "hub/", URL: "ftp://r.example"}, "http(s)"},
		{pullthrough.Upstream{Prefix: "hub/", URL: "https://r.example/v2"}, "without a path"},
		{pullthrough.Upstream{Prefix: "hub/", URL: "https://u:sekret@r.example"}, "credentials"},
		{pullthrough.Upstream{Prefix: "hub/", URL: "ftp://u:sekret@r.example/x"}, "credentials"},
		{pullthrough.Upstream{Prefix: "hub/", URL: "https://u:sekret@r.example/%zz"}, "not a valid URL"},
		{pullthrough.Upstream{Prefix: "hub/", URL: "https://r.example", Username: "u"}, "go together"},
	} {
		_, err := pullthrough.New(m.store, []pullthrough.Upstream{c.up}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "sekret") {
			t.Errorf("%+v: %v, want an error about %s", c.up, err, c.want)
		}
	}
	ok := pullthrough.Upstream{Prefix: "hub/", URL: "https://r.example", Username: "u", Password: "sekret"}
	if _, err := pullthrough.New(m.store, []pullthrough.Upstream{ok, ok}, nil); err == nil {
		t.Error("a prefix configured twice was accepted")
	}
	if _, err := pullthrough.New(m.store, nil, &pullthrough.Options{RequestTimeout: -1}); err == nil {
		t.Error("a negative timeout was accepted")
	}
	c, err := pullthrough.New(m.store, []pullthrough.Upstream{ok, {Prefix: "hub/x/", URL: "http://10.0.0.1:5000/"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Mirrors("hub/x/app") || !c.Mirrors("hub/app") || c.Mirrors("hub") || c.Mirrors("team/app") {
		t.Error("Mirrors")
	}
	for _, u := range c.Upstreams() {
		if strings.Contains(u.String(), "sekret") || u.Password == "sekret" {
			t.Errorf("password shown: %s", u)
		}
		if u.TagTTL != pullthrough.DefaultTagTTL {
			t.Errorf("default TTL: %s", u.TagTTL)
		}
	}
}
