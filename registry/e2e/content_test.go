package e2e_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testImage returns a random OCI image for linux/arch with two layers.
func testImage(t testing.TB, arch string) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for range 2 {
		l, err := random.Layer(4096, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testIndex returns an OCI index of the images, each with its platform.
func testIndex(t testing.TB, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture},
		}})
	}
	return idx
}

// writeLayout writes an OCI image layout holding each image and index,
// named (org.opencontainers.image.ref.name) by its key.
func writeLayout(t testing.TB, imgs map[string]v1.Image, idxs map[string]v1.ImageIndex) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for n, img := range imgs {
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": n})); err != nil {
			t.Fatal(err)
		}
	}
	for n, idx := range idxs {
		if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": n})); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// layoutDigest returns the digest of the manifest named ref in an OCI
// layout, or of its only manifest when ref is empty.
func layoutDigest(t testing.TB, dir, ref string) v1.Hash {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if ref == "" && len(im.Manifests) == 1 || ref != "" && d.Annotations["org.opencontainers.image.ref.name"] == ref {
			return d.Digest
		}
	}
	t.Fatalf("layout %s has no manifest %q: %+v", dir, ref, im.Manifests)
	return v1.Hash{}
}

func digestOf(t testing.TB, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The server, as go-containerregistry sees it, to check what the clients
// did.

func (s *server) options(t testing.TB) []remote.Option {
	t.Helper()
	return []remote.Option{
		remote.WithAuth(&authn.Basic{Username: s.User, Password: s.Password}),
		remote.WithTransport(s.Client(t).Transport.(*http.Transport)),
	}
}

func (s *server) ref(t testing.TB, r string) name.Reference {
	t.Helper()
	var opts []name.Option
	if !s.TLS {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(s.Host+"/"+r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// digest returns the digest of the manifest r names ("repo:tag" or
// "repo@digest"), failing the test when there is none.
func (s *server) digest(t testing.TB, r string) v1.Hash {
	t.Helper()
	d, err := remote.Head(s.ref(t, r), s.options(t)...)
	if err != nil {
		t.Fatalf("HEAD %s: %v", r, err)
	}
	return d.Digest
}

// exists reports whether the manifest r names exists.
func (s *server) exists(t testing.TB, r string) bool {
	t.Helper()
	_, err := remote.Head(s.ref(t, r), s.options(t)...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return false
	}
	if err != nil {
		t.Fatalf("HEAD %s: %v", r, err)
	}
	return true
}

// index returns the index r names.
func (s *server) index(t testing.TB, r string) *v1.IndexManifest {
	t.Helper()
	idx, err := remote.Index(s.ref(t, r), s.options(t)...)
	if err != nil {
		t.Fatalf("index %s: %v", r, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// referrers returns the referrers of subject (repo@digest) by the
// server's referrers API.
func (s *server) referrers(t testing.TB, repo string, subject v1.Hash) []v1.Descriptor {
	t.Helper()
	d, err := name.NewDigest(s.ref(t, repo).Context().String() + "@" + subject.String())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d, s.options(t)...)
	if err != nil {
		t.Fatalf("referrers of %s: %v", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests
}

// tags returns the tags of repo.
func (s *server) tags(t testing.TB, repo string) []string {
	t.Helper()
	tags, err := remote.List(s.ref(t, repo).Context(), s.options(t)...)
	if err != nil {
		t.Fatalf("tags of %s: %v", repo, err)
	}
	slices.Sort(tags)
	return tags
}

// checkIndex checks that the index r names lists exactly the images, by
// digest and platform.
func (s *server) checkIndex(t testing.TB, r string, imgs ...v1.Image) {
	t.Helper()
	im := s.index(t, r)
	if len(im.Manifests) != len(imgs) {
		t.Fatalf("index %s lists %d manifests, want %d", r, len(im.Manifests), len(imgs))
	}
	for _, img := range imgs {
		want := digestOf(t, img)
		cf, _ := img.ConfigFile()
		i := slices.IndexFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Digest == want })
		if i < 0 {
			t.Fatalf("index %s does not list %s", r, want)
		}
		if p := im.Manifests[i].Platform; p == nil || p.OS != cf.OS || p.Architecture != cf.Architecture {
			t.Errorf("index %s: %s has platform %+v, want %s/%s", r, want, p, cf.OS, cf.Architecture)
		}
		// The child is stored in the index's repository.
		repo := s.ref(t, r).Context().RepositoryStr()
		if got := s.digest(t, repo+"@"+want.String()); got != want {
			t.Fatalf("child %s: digest %s", want, got)
		}
	}
}
