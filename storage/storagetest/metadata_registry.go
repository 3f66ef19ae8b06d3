package storagetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// runRegistryTests runs the subtests of driver.Registry, or skips them
// when the backend does not implement it.
func runRegistryTests(t *testing.T, open NewMetadata) {
	reg := func(t *testing.T) registryBackend {
		t.Helper()
		m := open(t)
		r, ok := m.(registryBackend)
		if !ok {
			t.Skipf("%T does not implement driver.Registry", m)
		}
		return r
	}
	t.Run("Repositories", func(t *testing.T) { t.Parallel(); testRepositories(t, reg) })
	t.Run("Manifests", func(t *testing.T) { t.Parallel(); testManifests(t, reg) })
	t.Run("ManifestHeads", func(t *testing.T) { t.Parallel(); testManifestHeads(t, reg) })
	t.Run("Tags", func(t *testing.T) { t.Parallel(); testTags(t, reg) })
	t.Run("Immutability", func(t *testing.T) { t.Parallel(); testImmutability(t, reg) })
	t.Run("Referrers", func(t *testing.T) { t.Parallel(); testReferrers(t, reg) })
	t.Run("Links", func(t *testing.T) { t.Parallel(); testLinks(t, reg) })
	t.Run("References", func(t *testing.T) { t.Parallel(); testReferences(t, reg) })
	t.Run("LinkPruner", func(t *testing.T) { t.Parallel(); testLinkPruner(t, reg) })
	t.Run("Policies", func(t *testing.T) { t.Parallel(); testPolicies(t, reg) })
	t.Run("ScanResults", func(t *testing.T) { t.Parallel(); testScanResults(t, reg) })
	t.Run("Tokens", func(t *testing.T) { t.Parallel(); testTokens(t, reg) })
	t.Run("Outbox", func(t *testing.T) { t.Parallel(); testOutbox(t, reg) })
	t.Run("RegistryCancellation", func(t *testing.T) { t.Parallel(); testRegistryCancellation(t, reg) })
	runScanJobTests(t, open)
}

type registryBackend interface {
	driver.Metadata
	driver.Registry
}

type openRegistry func(t *testing.T) registryBackend

var bg = context.Background()

func repo(name string) *driver.Repository {
	return &driver.Repository{Name: name, Visibility: driver.Private, CreatedAt: at(0), UpdatedAt: at(0)}
}

func mustCreateRepo(t *testing.T, m registryBackend, r *driver.Repository) {
	t.Helper()
	must(t, "CreateRepository "+r.Name, m.CreateRepository(bg, r))
}

func manifest(repo, content string) *driver.Manifest {
	return &driver.Manifest{
		Repository:   repo,
		Digest:       digestOf(content),
		MediaType:    "application/vnd.oci.image.manifest.v1+json",
		Size:         int64(len(content)),
		ConfigDigest: digestOf(content + "/config"),
		Blobs:        []digest.Digest{digestOf(content + "/config"), digestOf(content + "/layer")},
		Platforms:    []driver.Platform{{OS: "linux", Architecture: "amd64"}},
		PushedAt:     at(1),
	}
}

func mustPutManifest(t *testing.T, m registryBackend, mf *driver.Manifest) {
	t.Helper()
	_, err := m.PutManifest(bg, mf)
	must(t, "PutManifest "+string(mf.Digest), err)
}

func tag(repo, name string, d digest.Digest, n int) *driver.Tag {
	return &driver.Tag{Repository: repo, Name: name, Digest: d, UpdatedAt: at(n), UpdatedBy: "user-" + fmt.Sprint(n)}
}

// checkPages walks a keyset-paginated list with several page sizes and
// checks that it yields want exactly, with correct "more" flags, and
// that a limit below 1 is ErrInvalidArgument.
func checkPages[K comparable](t *testing.T, what string, want []K, zero K, list func(after K, limit int) ([]K, bool, error)) {
	t.Helper()
	if want == nil {
		want = []K{}
	}
	for _, limit := range []int{1, 2, 3, len(want), len(want) + 1, 1000} {
		if limit < 1 {
			continue
		}
		var got []K
		after := zero
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("%s: limit %d: pagination does not end", what, limit)
			}
			page, more, err := list(after, limit)
			if err != nil {
				t.Fatalf("%s: limit %d after %v: %v", what, limit, after, err)
			}
			if page == nil {
				t.Errorf("%s: limit %d: page is nil, want an empty slice", what, limit)
			}
			if len(page) > limit {
				t.Fatalf("%s: limit %d: page of %d", what, limit, len(page))
			}
			got = append(got, page...)
			if wantMore := len(got) < len(want); more != wantMore {
				t.Errorf("%s: limit %d after %v: more = %v, want %v", what, limit, after, more, wantMore)
			}
			if !more || len(page) == 0 {
				break
			}
			after = page[len(page)-1]
		}
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: limit %d: walked %v, want %v", what, limit, got, want)
		}
	}
	if len(want) > 0 {
		page, more, err := list(want[len(want)-1], 5)
		if err != nil || len(page) != 0 || more {
			t.Errorf("%s after the last key = %v, %v, %v; want an empty page", what, page, more, err)
		}
	}
	for _, limit := range []int{0, -1} {
		if _, _, err := list(zero, limit); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("%s with limit %d: error = %v, want ErrInvalidArgument", what, limit, err)
		}
	}
}

func keys[T any, K any](page []T, key func(T) K) []K {
	out := make([]K, len(page))
	for i, v := range page {
		out[i] = key(v)
	}
	return out
}

func repoNames(m registryBackend) func(string, int) ([]string, bool, error) {
	return func(after string, limit int) ([]string, bool, error) {
		page, more, err := m.ListRepositories(bg, after, limit)
		return keys(page, func(r *driver.Repository) string { return r.Name }), more, err
	}
}

func testRepositories(t *testing.T, open openRegistry) {
	t.Run("CRUD", func(t *testing.T) {
		m := open(t)
		_, err := m.GetRepository(bg, "team/app")
		wantErr(t, "GetRepository", err, driver.ErrNotFound)
		wantErr(t, "UpdateRepository", m.UpdateRepository(bg, repo("team/app")), driver.ErrNotFound)
		wantErr(t, "DeleteRepository", m.DeleteRepository(bg, "team/app"), driver.ErrNotFound)

		r := repo("team/app")
		r.Visibility = driver.Public
		r.ImmutableTags = true
		r.ImmutableTagExclusions = []string{"latest", "dev-*"}
		r.Description = "the app"
		must(t, "CreateRepository", m.CreateRepository(bg, r))
		wantErr(t, "CreateRepository twice", m.CreateRepository(bg, repo("team/app")), driver.ErrAlreadyExists)
		got, err := m.GetRepository(bg, "team/app")
		must(t, "GetRepository", err)
		if got.Name != r.Name || got.Visibility != driver.Public || !got.ImmutableTags || got.Description != "the app" ||
			!slices.Equal(got.ImmutableTagExclusions, r.ImmutableTagExclusions) || !sameTime(got.CreatedAt, at(0)) {
			t.Errorf("GetRepository = %+v, want %+v", got, r)
		}
		got.ImmutableTagExclusions[0] = "changed"

		u := repo("team/app")
		u.CreatedAt = at(50) // ignored
		u.UpdatedAt = at(60)
		u.Description = "new"
		must(t, "UpdateRepository", m.UpdateRepository(bg, u))
		got, err = m.GetRepository(bg, "team/app")
		must(t, "GetRepository", err)
		if got.Visibility != driver.Private || got.ImmutableTags || len(got.ImmutableTagExclusions) != 0 || got.Description != "new" ||
			!sameTime(got.CreatedAt, at(0)) || !sameTime(got.UpdatedAt, at(60)) {
			t.Errorf("after UpdateRepository: %+v", got)
		}
		must(t, "DeleteRepository", m.DeleteRepository(bg, "team/app"))
		_, err = m.GetRepository(bg, "team/app")
		wantErr(t, "GetRepository after delete", err, driver.ErrNotFound)
	})

	t.Run("Invalid", func(t *testing.T) {
		m := open(t)
		bad := repo("x")
		bad.Visibility = "internal"
		wantErr(t, "CreateRepository with bad visibility", m.CreateRepository(bg, bad), driver.ErrInvalidArgument)
		bad = repo("x")
		bad.Visibility = ""
		wantErr(t, "CreateRepository with no visibility", m.CreateRepository(bg, bad), driver.ErrInvalidArgument)
		bad = repo("x")
		bad.ImmutableTagExclusions = []string{"v[1"}
		wantErr(t, "CreateRepository with a bad glob", m.CreateRepository(bg, bad), driver.ErrInvalidArgument)
		mustCreateRepo(t, m, repo("x"))
		wantErr(t, "UpdateRepository with a bad glob", m.UpdateRepository(bg, bad), driver.ErrInvalidArgument)
	})

	t.Run("Catalog", func(t *testing.T) {
		m := open(t)
		checkPages(t, "empty catalog", nil, "", repoNames(m))
		// Byte order, not locale order: upper case first, '-' < '/' < 'a'.
		names := []string{"b", "a/b", "a", "a-b", "B", "a/c/d", "z9", "z10"}
		for _, n := range names {
			mustCreateRepo(t, m, repo(n))
		}
		slices.Sort(names)
		checkPages(t, "catalog", names, "", repoNames(m))
	})

	t.Run("WalkWhileChanging", func(t *testing.T) {
		// Keyset pages neither repeat nor skip records that exist
		// throughout a walk, however others change meanwhile.
		m := open(t)
		var stable []string
		for i := range 20 {
			n := fmt.Sprintf("r%02d", i*2)
			mustCreateRepo(t, m, repo(n))
			stable = append(stable, n)
		}
		seen := map[string]int{}
		after := ""
		for i := 0; ; i++ {
			page, more, err := m.ListRepositories(bg, after, 3)
			must(t, "ListRepositories", err)
			for _, r := range page {
				seen[r.Name]++
			}
			if !more {
				break
			}
			after = page[len(page)-1].Name
			// Insert before and after the cursor, and delete a
			// transient record.
			mustCreateRepo(t, m, repo(fmt.Sprintf("r%02d", i*2+1)))
			mustCreateRepo(t, m, repo(fmt.Sprintf("q%02d", i)))
			mustCreateRepo(t, m, repo("transient"))
			must(t, "DeleteRepository", m.DeleteRepository(bg, "transient"))
		}
		for _, n := range stable {
			if seen[n] != 1 {
				t.Errorf("walk saw %s %d times, want once", n, seen[n])
			}
		}
		for n, c := range seen {
			if c != 1 {
				t.Errorf("walk saw %s %d times", n, c)
			}
		}
	})

	t.Run("DeleteCascades", func(t *testing.T) {
		m := open(t)
		mustCreateRepo(t, m, repo("gone"))
		mf := manifest("gone", "m1")
		mustPutManifest(t, m, mf)
		_, err := m.SetTag(bg, tag("gone", "v1", mf.Digest, 1))
		must(t, "SetTag", err)
		b := testBlob("gone-blob", "k")
		_, _, err = m.PutBlob(bg, b)
		must(t, "PutBlob", err)
		must(t, "LinkBlob", m.LinkBlob(bg, "gone", b.Digest, at(1)))
		must(t, "PutPolicy", m.PutPolicy(bg, &driver.Policy{Repository: "gone", Document: []byte(`{"rules":[]}`)}))
		must(t, "PutScanResult", m.PutScanResult(bg, &driver.ScanResult{Digest: mf.Digest, Scanner: "s", Kind: driver.ScanReport, Data: []byte("{}")}))

		must(t, "DeleteRepository", m.DeleteRepository(bg, "gone"))
		mustCreateRepo(t, m, repo("gone"))
		if _, err := m.GetManifest(bg, "gone", mf.Digest); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("manifest survived its repository: %v", err)
		}
		if _, err := m.GetTag(bg, "gone", "v1"); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("tag survived its repository: %v", err)
		}
		if h, _, err := m.ListTagHistory(bg, "gone", "v1", 0, 10); err != nil || len(h) != 0 {
			t.Errorf("tag history survived its repository: %v, %v", h, err)
		}
		if ok, err := m.BlobLinked(bg, "gone", b.Digest); err != nil || ok {
			t.Errorf("link survived its repository: %v, %v", ok, err)
		}
		if _, err := m.GetPolicy(bg, "gone"); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("policy survived its repository: %v", err)
		}
		if _, err := m.GetBlob(bg, b.Digest); err != nil {
			t.Errorf("blob record removed with a repository: %v", err)
		}
		if rs, err := m.ListScanResults(bg, mf.Digest); err != nil || len(rs) != 1 {
			t.Errorf("scan results after deleting a repository = %v, %v; want them kept", rs, err)
		}
		if l, n, err := m.CountBlobReferences(bg, mf.Blobs[0]); err != nil || l != 0 || n != 0 {
			t.Errorf("references survived their repository: %d, %d, %v", l, n, err)
		}
	})
}

func diffManifest(got, want *driver.Manifest) string {
	switch {
	case got == nil:
		return "got nil manifest"
	case got.Repository != want.Repository || got.Digest != want.Digest:
		return fmt.Sprintf("identity %s@%s, want %s@%s", got.Repository, got.Digest, want.Repository, want.Digest)
	case got.MediaType != want.MediaType || got.ArtifactType != want.ArtifactType || got.Size != want.Size:
		return fmt.Sprintf("media type/artifact type/size = %q/%q/%d, want %q/%q/%d", got.MediaType, got.ArtifactType, got.Size, want.MediaType, want.ArtifactType, want.Size)
	case got.ConfigDigest != want.ConfigDigest || got.Subject != want.Subject:
		return fmt.Sprintf("config/subject = %s/%s, want %s/%s", got.ConfigDigest, got.Subject, want.ConfigDigest, want.Subject)
	case len(got.Annotations) != len(want.Annotations) || (len(want.Annotations) > 0 && !maps.Equal(got.Annotations, want.Annotations)):
		return fmt.Sprintf("Annotations = %v, want %v", got.Annotations, want.Annotations)
	case len(got.Platforms) != len(want.Platforms):
		return fmt.Sprintf("Platforms = %v, want %v", got.Platforms, want.Platforms)
	case len(got.Blobs) != len(want.Blobs) || (len(want.Blobs) > 0 && !slices.Equal(got.Blobs, want.Blobs)):
		return fmt.Sprintf("Blobs = %v, want %v", got.Blobs, want.Blobs)
	case len(got.Children) != len(want.Children) || (len(want.Children) > 0 && !slices.Equal(got.Children, want.Children)):
		return fmt.Sprintf("Children = %v, want %v", got.Children, want.Children)
	case !sameTime(got.PushedAt, want.PushedAt) || !sameTime(got.LastPulledAt, want.LastPulledAt):
		return fmt.Sprintf("pushed/pulled = %v/%v, want %v/%v", got.PushedAt, got.LastPulledAt, want.PushedAt, want.LastPulledAt)
	}
	for i := range got.Platforms {
		g, w := got.Platforms[i], want.Platforms[i]
		if g.OS != w.OS || g.Architecture != w.Architecture || g.Variant != w.Variant || g.OSVersion != w.OSVersion || !slices.Equal(g.OSFeatures, w.OSFeatures) {
			return fmt.Sprintf("Platforms[%d] = %+v, want %+v", i, g, w)
		}
	}
	return ""
}

func testManifests(t *testing.T, open openRegistry) {
	t.Run("CRUD", func(t *testing.T) {
		m := open(t)
		mf := manifest("app", "m1")
		mf.ArtifactType = "application/vnd.example"
		mf.Subject = digestOf("subject")
		mf.Annotations = map[string]string{"org.opencontainers.image.created": "2026-01-01"}
		mf.Platforms = []driver.Platform{{OS: "linux", Architecture: "arm64", Variant: "v8", OSVersion: "1", OSFeatures: []string{"f"}}}
		_, err := m.PutManifest(bg, mf)
		wantErr(t, "PutManifest to a missing repository", err, driver.ErrNotFound)
		mustCreateRepo(t, m, repo("app"))
		_, err = m.GetManifest(bg, "app", mf.Digest)
		wantErr(t, "GetManifest", err, driver.ErrNotFound)
		created, err := m.PutManifest(bg, mf)
		must(t, "PutManifest", err)
		if !created {
			t.Error("PutManifest of a new manifest: created = false")
		}
		again := manifest("app", "m1")
		again.PushedAt = at(99)
		created, err = m.PutManifest(bg, again)
		must(t, "PutManifest again", err)
		if created {
			t.Error("PutManifest of a stored manifest: created = true")
		}
		got, err := m.GetManifest(bg, "app", mf.Digest)
		must(t, "GetManifest", err)
		if d := diffManifest(got, mf); d != "" {
			t.Errorf("GetManifest: %s", d)
		}
		// Neither the caller's record nor the returned one is retained.
		want := *mf
		want.Blobs = slices.Clone(mf.Blobs)
		want.Annotations = maps.Clone(mf.Annotations)
		want.Platforms = slices.Clone(mf.Platforms)
		mf.Blobs[0] = "changed"
		mf.Annotations["x"] = "y"
		got.Blobs[1] = "changed"
		got.Annotations["z"] = "y"
		got.Platforms[0].OS = "changed"
		got, err = m.GetManifest(bg, "app", want.Digest)
		must(t, "GetManifest", err)
		if d := diffManifest(got, &want); d != "" {
			t.Errorf("backend retained a caller's record: %s", d)
		}
		mf = &want

		// The same digest in another repository is another record.
		mustCreateRepo(t, m, repo("other"))
		_, err = m.GetManifest(bg, "other", mf.Digest)
		wantErr(t, "GetManifest in another repository", err, driver.ErrNotFound)

		must(t, "MarkPulled", m.MarkPulled(bg, "app", mf.Digest, at(10)))
		must(t, "MarkPulled earlier", m.MarkPulled(bg, "app", mf.Digest, at(5)))
		wantErr(t, "MarkPulled missing", m.MarkPulled(bg, "app", digestOf("nope"), at(5)), driver.ErrNotFound)
		got, err = m.GetManifest(bg, "app", mf.Digest)
		must(t, "GetManifest", err)
		if !sameTime(got.LastPulledAt, at(10)) {
			t.Errorf("LastPulledAt = %v, want the latest pull %v", got.LastPulledAt, at(10))
		}

		del, err := m.DeleteManifest(bg, "app", mf.Digest, "admin", at(20))
		must(t, "DeleteManifest", err)
		if del.Digest != mf.Digest {
			t.Errorf("DeleteManifest returned %+v", del)
		}
		_, err = m.DeleteManifest(bg, "app", mf.Digest, "admin", at(20))
		wantErr(t, "DeleteManifest twice", err, driver.ErrNotFound)
		_, err = m.GetManifest(bg, "app", mf.Digest)
		wantErr(t, "GetManifest after delete", err, driver.ErrNotFound)
	})

	t.Run("DeleteRemovesTags", func(t *testing.T) {
		m := open(t)
		r := repo("app")
		r.ImmutableTags = true
		mustCreateRepo(t, m, r)
		a, b := manifest("app", "a"), manifest("app", "b")
		mustPutManifest(t, m, a)
		mustPutManifest(t, m, b)
		for i, name := range []string{"v1", "v1.0", "latest"} {
			_, err := m.SetTag(bg, tag("app", name, a.Digest, i))
			must(t, "SetTag", err)
		}
		_, err := m.SetTag(bg, tag("app", "other", b.Digest, 5))
		must(t, "SetTag", err)
		names, err := m.TagsOf(bg, "app", a.Digest)
		must(t, "TagsOf", err)
		if want := []string{"latest", "v1", "v1.0"}; !slices.Equal(names, want) {
			t.Errorf("TagsOf = %v, want %v", names, want)
		}
		_, err = m.DeleteManifest(bg, "app", a.Digest, "gc", at(30))
		must(t, "DeleteManifest", err)
		tags, _, err := m.ListTags(bg, "app", "", 10)
		must(t, "ListTags", err)
		if names := keys(tags, func(t *driver.Tag) string { return t.Name }); !slices.Equal(names, []string{"other"}) {
			t.Errorf("tags after deleting their manifest = %v, want [other]", names)
		}
		for _, r := range []string{"app", "missing"} {
			if names, err := m.TagsOf(bg, r, a.Digest); err != nil || names == nil || len(names) != 0 {
				t.Errorf("TagsOf(%s) of a deleted manifest = %v, %v; want an empty slice", r, names, err)
			}
		}
		h, _, err := m.ListTagHistory(bg, "app", "v1", 0, 10)
		must(t, "ListTagHistory", err)
		if len(h) != 2 || h[1].Old != a.Digest || h[1].New != "" || h[1].By != "gc" || !sameTime(h[1].At, at(30)) {
			t.Errorf("history of a tag removed with its manifest = %+v", h)
		}
	})

	t.Run("List", func(t *testing.T) {
		m := open(t)
		_, _, err := m.ListManifests(bg, "app", "", 10)
		wantErr(t, "ListManifests of a missing repository", err, driver.ErrNotFound)
		mustCreateRepo(t, m, repo("app"))
		mustCreateRepo(t, m, repo("app2"))
		mustPutManifest(t, m, manifest("app2", "elsewhere"))
		list := func(after digest.Digest, limit int) ([]digest.Digest, bool, error) {
			page, more, err := m.ListManifests(bg, "app", after, limit)
			return keys(page, func(mf *driver.Manifest) digest.Digest { return mf.Digest }), more, err
		}
		checkPages(t, "ListManifests of an empty repository", nil, "", list)
		var want []digest.Digest
		for i := range 7 {
			mf := manifest("app", fmt.Sprint("m", i))
			mustPutManifest(t, m, mf)
			want = append(want, mf.Digest)
		}
		slices.Sort(want)
		checkPages(t, "ListManifests", want, "", list)
	})
}

// testManifestHeads checks the optional driver.ManifestHeads: a tag or a
// digest resolves to the current record's head, and every change (tag
// moved or deleted, manifest deleted, repository deleted) shows at once.
func testManifestHeads(t *testing.T, open openRegistry) {
	m := open(t)
	mh, ok := m.(driver.ManifestHeads)
	if !ok {
		t.Skipf("%T does not implement driver.ManifestHeads", m)
	}
	head := func(repo, ref string) (driver.ManifestHead, error) { return mh.ManifestHead(bg, repo, ref) }
	wantHead := func(what string, got driver.ManifestHead, err error, mf *driver.Manifest) {
		t.Helper()
		must(t, what, err)
		if want := (driver.ManifestHead{Digest: mf.Digest, MediaType: mf.MediaType, Size: mf.Size}); got != want {
			t.Errorf("%s = %+v, want %+v", what, got, want)
		}
	}
	_, err := head("app", "latest")
	wantErr(t, "ManifestHead in a missing repository", err, driver.ErrNotFound)
	mustCreateRepo(t, m, repo("app"))
	mustCreateRepo(t, m, repo("other"))
	a, b := manifest("app", "a"), manifest("app", "b")
	b.MediaType = "application/vnd.oci.image.index.v1+json"
	b.Size = 4321
	mustPutManifest(t, m, a)
	mustPutManifest(t, m, b)
	_, err = head("app", "latest")
	wantErr(t, "ManifestHead of a missing tag", err, driver.ErrNotFound)
	_, err = head("app", string(digestOf("nope")))
	wantErr(t, "ManifestHead of a missing digest", err, driver.ErrNotFound)
	got, err := head("app", string(a.Digest))
	wantHead("ManifestHead by digest", got, err, a)

	_, err = m.SetTag(bg, tag("app", "latest", a.Digest, 1))
	must(t, "SetTag", err)
	got, err = head("app", "latest")
	wantHead("ManifestHead by tag", got, err, a)
	// Tags and records are per repository.
	_, err = head("other", "latest")
	wantErr(t, "ManifestHead of another repository's tag", err, driver.ErrNotFound)
	_, err = head("other", string(a.Digest))
	wantErr(t, "ManifestHead of another repository's manifest", err, driver.ErrNotFound)

	// A moved tag resolves to its new manifest at once.
	_, err = m.SetTag(bg, tag("app", "latest", b.Digest, 2))
	must(t, "SetTag (move)", err)
	got, err = head("app", "latest")
	wantHead("ManifestHead of a moved tag", got, err, b)
	// A deleted tag is gone; its manifest stays.
	_, err = m.DeleteTag(bg, "app", "latest", "admin", at(3))
	must(t, "DeleteTag", err)
	_, err = head("app", "latest")
	wantErr(t, "ManifestHead of a deleted tag", err, driver.ErrNotFound)
	got, err = head("app", string(b.Digest))
	wantHead("ManifestHead after deleting its tag", got, err, b)
	// Deleting a manifest removes it and the tags pointing at it.
	_, err = m.SetTag(bg, tag("app", "v1", a.Digest, 4))
	must(t, "SetTag", err)
	_, err = m.DeleteManifest(bg, "app", a.Digest, "admin", at(5))
	must(t, "DeleteManifest", err)
	_, err = head("app", "v1")
	wantErr(t, "ManifestHead of a tag of a deleted manifest", err, driver.ErrNotFound)
	_, err = head("app", string(a.Digest))
	wantErr(t, "ManifestHead of a deleted manifest", err, driver.ErrNotFound)
	// And deleting the repository removes everything in it.
	_, err = m.SetTag(bg, tag("app", "v2", b.Digest, 6))
	must(t, "SetTag", err)
	must(t, "DeleteRepository", m.DeleteRepository(bg, "app"))
	_, err = head("app", "v2")
	wantErr(t, "ManifestHead in a deleted repository", err, driver.ErrNotFound)
	_, err = head("app", string(b.Digest))
	wantErr(t, "ManifestHead by digest in a deleted repository", err, driver.ErrNotFound)

	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := mh.ManifestHead(ctx, "other", "latest"); !errors.Is(err, context.Canceled) {
		t.Errorf("ManifestHead with a cancelled context: %v, want context.Canceled", err)
	}
}

func testTags(t *testing.T, open openRegistry) {
	t.Run("SetGetDelete", func(t *testing.T) {
		m := open(t)
		_, err := m.SetTag(bg, tag("app", "v1", digestOf("a"), 1))
		wantErr(t, "SetTag in a missing repository", err, driver.ErrNotFound)
		mustCreateRepo(t, m, repo("app"))
		_, err = m.SetTag(bg, tag("app", "v1", digestOf("a"), 1))
		wantErr(t, "SetTag to a missing manifest", err, driver.ErrNotFound)
		a, b := manifest("app", "a"), manifest("app", "b")
		mustPutManifest(t, m, a)
		mustPutManifest(t, m, b)
		_, err = m.GetTag(bg, "app", "v1")
		wantErr(t, "GetTag", err, driver.ErrNotFound)

		old, err := m.SetTag(bg, tag("app", "v1", a.Digest, 1))
		must(t, "SetTag", err)
		if old != "" {
			t.Errorf("SetTag of a new tag returned old = %q", old)
		}
		old, err = m.SetTag(bg, tag("app", "v1", b.Digest, 2))
		must(t, "SetTag", err)
		if old != a.Digest {
			t.Errorf("SetTag returned old = %q, want %q", old, a.Digest)
		}
		old, err = m.SetTag(bg, tag("app", "v1", b.Digest, 3))
		must(t, "SetTag to the current digest", err)
		if old != b.Digest {
			t.Errorf("SetTag to the current digest returned old = %q, want %q", old, b.Digest)
		}
		got, err := m.GetTag(bg, "app", "v1")
		must(t, "GetTag", err)
		if got.Repository != "app" || got.Name != "v1" || got.Digest != b.Digest || got.UpdatedBy != "user-2" || !sameTime(got.UpdatedAt, at(2)) {
			t.Errorf("GetTag = %+v; want b, set by user-2 at(2) (re-setting the same digest changes nothing)", got)
		}
		del, err := m.DeleteTag(bg, "app", "v1", "admin", at(4))
		must(t, "DeleteTag", err)
		if del.Digest != b.Digest {
			t.Errorf("DeleteTag returned %+v", del)
		}
		_, err = m.DeleteTag(bg, "app", "v1", "admin", at(4))
		wantErr(t, "DeleteTag twice", err, driver.ErrNotFound)
		_, err = m.GetTag(bg, "app", "v1")
		wantErr(t, "GetTag after delete", err, driver.ErrNotFound)

		_, err = m.SetTag(bg, tag("app", "v1", a.Digest, 5))
		must(t, "SetTag after delete", err)

		type change struct {
			old, new digest.Digest
			by       string
			at       time.Time
		}
		want := []change{{"", a.Digest, "user-1", at(1)}, {a.Digest, b.Digest, "user-2", at(2)}, {b.Digest, "", "admin", at(4)}, {"", a.Digest, "user-5", at(5)}}
		h, more, err := m.ListTagHistory(bg, "app", "v1", 0, 10)
		must(t, "ListTagHistory", err)
		if more || len(h) != len(want) {
			t.Fatalf("ListTagHistory = %d changes (more %v), want %d", len(h), more, len(want))
		}
		for i, c := range h {
			w := want[i]
			if c.Repository != "app" || c.Tag != "v1" || c.Old != w.old || c.New != w.new || c.By != w.by || !sameTime(c.At, w.at) {
				t.Errorf("history[%d] = %+v, want %+v", i, c, w)
			}
			if i > 0 && c.Seq <= h[i-1].Seq {
				t.Errorf("history Seq not increasing: %d after %d", c.Seq, h[i-1].Seq)
			}
		}
		seqs := keys(h, func(c *driver.TagChange) int64 { return c.Seq })
		checkPages(t, "ListTagHistory", seqs, 0, func(after int64, limit int) ([]int64, bool, error) {
			page, more, err := m.ListTagHistory(bg, "app", "v1", after, limit)
			return keys(page, func(c *driver.TagChange) int64 { return c.Seq }), more, err
		})
		h, _, err = m.ListTagHistory(bg, "app", "never", 0, 10)
		if err != nil || len(h) != 0 {
			t.Errorf("ListTagHistory of a tag that never existed = %v, %v; want empty", h, err)
		}
		_, _, err = m.ListTagHistory(bg, "missing", "v1", 0, 10)
		wantErr(t, "ListTagHistory of a missing repository", err, driver.ErrNotFound)
	})

	t.Run("List", func(t *testing.T) {
		m := open(t)
		_, _, err := m.ListTags(bg, "app", "", 10)
		wantErr(t, "ListTags of a missing repository", err, driver.ErrNotFound)
		mustCreateRepo(t, m, repo("app"))
		mf := manifest("app", "a")
		mustPutManifest(t, m, mf)
		list := func(after string, limit int) ([]string, bool, error) {
			page, more, err := m.ListTags(bg, "app", after, limit)
			return keys(page, func(t *driver.Tag) string { return t.Name }), more, err
		}
		checkPages(t, "ListTags of an untagged repository", nil, "", list)
		var want []string
		for i := range 12 {
			name := fmt.Sprintf("v%d", i)
			if i%3 == 0 {
				name = fmt.Sprintf("V-%d", i)
			}
			_, err := m.SetTag(bg, tag("app", name, mf.Digest, i))
			must(t, "SetTag", err)
			want = append(want, name)
		}
		slices.Sort(want)
		checkPages(t, "ListTags", want, "", list)
	})

	t.Run("ConcurrentMutable", func(t *testing.T) {
		// Concurrent moves of one mutable tag all succeed, and the history
		// they leave is one chain: each change starts where the previous
		// one ended.
		m := open(t)
		mustCreateRepo(t, m, repo("app"))
		const n = 16
		ds := make([]digest.Digest, n)
		for i := range n {
			mf := manifest("app", fmt.Sprint("m", i))
			mustPutManifest(t, m, mf)
			ds[i] = mf.Digest
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := m.SetTag(bg, tag("app", "latest", ds[i], i)); err != nil {
					t.Errorf("SetTag: %v", err)
				}
			})
		}
		wg.Wait()
		h, _, err := m.ListTagHistory(bg, "app", "latest", 0, 100)
		must(t, "ListTagHistory", err)
		if len(h) != n {
			t.Fatalf("%d history entries for %d moves to distinct digests", len(h), n)
		}
		prev := digest.Digest("")
		for i, c := range h {
			if c.Old != prev {
				t.Errorf("history[%d].Old = %s, want the previous New %s", i, c.Old, prev)
			}
			prev = c.New
		}
		cur, err := m.GetTag(bg, "app", "latest")
		must(t, "GetTag", err)
		if cur.Digest != prev {
			t.Errorf("tag is at %s, history ends at %s", cur.Digest, prev)
		}
	})
}

// ImmutableRace has n writers race to create one tag, each with its own
// manifest, in a repository with immutable tags, and checks that exactly
// one wins and every other gets ErrAlreadyExists. Backends with several
// handles to one database (one per node) pass one per writer: handles[i %
// len(handles)] serves writer i. The repository must exist and hold the n
// manifests produced by ImmutableRaceManifest.
func ImmutableRace(t *testing.T, handles []driver.Tags, repoName string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	var wins, lost atomic.Int32
	winner := make(chan digest.Digest, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			d := ImmutableRaceManifest(repoName, i).Digest
			old, err := handles[i%len(handles)].SetTag(bg, tag(repoName, "v1.0.0", d, i))
			switch {
			case err == nil:
				if old != "" {
					t.Errorf("winning SetTag returned old = %s", old)
				}
				wins.Add(1)
				winner <- d
			case errors.Is(err, driver.ErrAlreadyExists):
				lost.Add(1)
			default:
				t.Errorf("SetTag %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || lost.Load() != int32(n-1) {
		t.Fatalf("%d writers of one immutable tag: %d won, %d got ErrAlreadyExists; want 1 and %d", n, wins.Load(), lost.Load(), n-1)
	}
	w := <-winner
	got, err := handles[0].GetTag(bg, repoName, "v1.0.0")
	must(t, "GetTag", err)
	if got.Digest != w {
		t.Errorf("tag points at %s, the winner set %s", got.Digest, w)
	}
}

// ImmutableRaceManifest returns manifest i of ImmutableRace's writers.
func ImmutableRaceManifest(repoName string, i int) *driver.Manifest {
	return manifest(repoName, fmt.Sprint("race-", i))
}

func testImmutability(t *testing.T, open openRegistry) {
	t.Run("Rules", func(t *testing.T) {
		m := open(t)
		r := repo("app")
		r.ImmutableTags = true
		r.ImmutableTagExclusions = []string{"latest", "dev-*", "rc?"}
		mustCreateRepo(t, m, r)
		a, b := manifest("app", "a"), manifest("app", "b")
		mustPutManifest(t, m, a)
		mustPutManifest(t, m, b)
		for _, name := range []string{"v1", "latest", "dev-x", "rc1", "rc10", "dev"} {
			_, err := m.SetTag(bg, tag("app", name, a.Digest, 1))
			must(t, "SetTag "+name, err)
		}
		// Re-pushing the same digest is always fine.
		_, err := m.SetTag(bg, tag("app", "v1", a.Digest, 2))
		must(t, "SetTag of an immutable tag to its digest", err)
		for name, mutable := range map[string]bool{"v1": false, "latest": true, "dev-x": true, "rc1": true, "rc10": false, "dev": false} {
			_, err := m.SetTag(bg, tag("app", name, b.Digest, 3))
			if mutable && err != nil {
				t.Errorf("SetTag of excluded tag %q: %v", name, err)
			}
			if !mutable {
				wantErr(t, "SetTag of immutable tag "+name, err, driver.ErrAlreadyExists)
			}
		}
		got, err := m.GetTag(bg, "app", "v1")
		must(t, "GetTag", err)
		if got.Digest != a.Digest {
			t.Errorf("immutable tag moved to %s", got.Digest)
		}
		h, _, err := m.ListTagHistory(bg, "app", "v1", 0, 10)
		must(t, "ListTagHistory", err)
		if len(h) != 1 {
			t.Errorf("immutable tag has %d history entries, want 1", len(h))
		}
		// Immutable tags may be deleted (lifecycle expiry), then created
		// again.
		_, err = m.DeleteTag(bg, "app", "v1", "lifecycle", at(4))
		must(t, "DeleteTag of an immutable tag", err)
		_, err = m.SetTag(bg, tag("app", "v1", b.Digest, 5))
		must(t, "SetTag after delete", err)

		// Turning immutability off and on applies at once.
		r.ImmutableTags = false
		must(t, "UpdateRepository", m.UpdateRepository(bg, r))
		_, err = m.SetTag(bg, tag("app", "v1", a.Digest, 6))
		must(t, "SetTag in a mutable repository", err)
		r.ImmutableTags = true
		must(t, "UpdateRepository", m.UpdateRepository(bg, r))
		_, err = m.SetTag(bg, tag("app", "v1", b.Digest, 7))
		wantErr(t, "SetTag after immutability is turned on", err, driver.ErrAlreadyExists)
	})

	t.Run("Race", func(t *testing.T) {
		m := open(t)
		r := repo("race")
		r.ImmutableTags = true
		mustCreateRepo(t, m, r)
		const n = 32
		for i := range n {
			mustPutManifest(t, m, ImmutableRaceManifest("race", i))
		}
		ImmutableRace(t, []driver.Tags{m}, "race", n)
	})
}

func testReferrers(t *testing.T, open openRegistry) {
	m := open(t)
	subject := digestOf("subject")
	_, _, err := m.ListReferrers(bg, "app", subject, "", "", 10)
	wantErr(t, "ListReferrers of a missing repository", err, driver.ErrNotFound)
	mustCreateRepo(t, m, repo("app"))
	mustCreateRepo(t, m, repo("other"))
	var sigs, sboms []digest.Digest
	for i := range 5 {
		mf := manifest("app", fmt.Sprint("sig", i))
		mf.Subject, mf.ArtifactType = subject, "application/vnd.example.signature"
		mf.Annotations = map[string]string{"n": fmt.Sprint(i)}
		mustPutManifest(t, m, mf)
		sigs = append(sigs, mf.Digest)
	}
	for i := range 3 {
		mf := manifest("app", fmt.Sprint("sbom", i))
		mf.Subject, mf.ArtifactType = subject, "application/spdx+json"
		mustPutManifest(t, m, mf)
		sboms = append(sboms, mf.Digest)
	}
	unrelated := manifest("app", "unrelated") // no subject
	mustPutManifest(t, m, unrelated)
	elsewhere := manifest("other", "sig-elsewhere")
	elsewhere.Subject = subject
	mustPutManifest(t, m, elsewhere)
	otherSubject := manifest("app", "other-subject")
	otherSubject.Subject = digestOf("another")
	mustPutManifest(t, m, otherSubject)

	list := func(artifactType string) func(digest.Digest, int) ([]digest.Digest, bool, error) {
		return func(after digest.Digest, limit int) ([]digest.Digest, bool, error) {
			page, more, err := m.ListReferrers(bg, "app", subject, artifactType, after, limit)
			for _, mf := range page {
				if mf.Subject != subject {
					t.Errorf("ListReferrers returned %s with subject %s", mf.Digest, mf.Subject)
				}
			}
			return keys(page, func(mf *driver.Manifest) digest.Digest { return mf.Digest }), more, err
		}
	}
	all := slices.Concat(sigs, sboms)
	slices.Sort(all)
	slices.Sort(sigs)
	slices.Sort(sboms)
	checkPages(t, "ListReferrers", all, "", list(""))
	checkPages(t, "ListReferrers(signature)", sigs, "", list("application/vnd.example.signature"))
	checkPages(t, "ListReferrers(spdx)", sboms, "", list("application/spdx+json"))
	checkPages(t, "ListReferrers(unknown type)", nil, "", list("application/unknown"))
	page, _, err := m.ListReferrers(bg, "app", sigs[0], "", "", 10)
	if err != nil || len(page) != 0 {
		t.Errorf("ListReferrers of a subject with no referrers = %v, %v", page, err)
	}
	page, _, err = m.ListReferrers(bg, "app", "", "", "", 10)
	if err != nil || len(page) != 0 {
		t.Errorf("ListReferrers of the empty subject = %v, %v; want none", page, err)
	}
	page, _, err = m.ListReferrers(bg, "app", subject, "application/spdx+json", "", 1)
	must(t, "ListReferrers", err)
	if len(page) != 1 || page[0].ArtifactType != "application/spdx+json" || page[0].Size == 0 {
		t.Errorf("ListReferrers returned incomplete records: %+v", page)
	}
}

func testLinks(t *testing.T, open openRegistry) {
	m := open(t)
	b := testBlob("linked", "k")
	wantErr(t, "LinkBlob to a missing repository", m.LinkBlob(bg, "app", b.Digest, at(1)), driver.ErrNotFound)
	mustCreateRepo(t, m, repo("app"))
	mustCreateRepo(t, m, repo("other"))
	wantErr(t, "LinkBlob of a missing blob", m.LinkBlob(bg, "app", b.Digest, at(1)), driver.ErrNotFound)
	_, _, err := m.PutBlob(bg, b)
	must(t, "PutBlob", err)
	must(t, "LinkBlob", m.LinkBlob(bg, "app", b.Digest, at(1)))
	must(t, "LinkBlob twice", m.LinkBlob(bg, "app", b.Digest, at(2)))
	if ok, err := m.BlobLinked(bg, "app", b.Digest); err != nil || !ok {
		t.Errorf("BlobLinked = %v, %v; want true", ok, err)
	}
	if ok, err := m.BlobLinked(bg, "other", b.Digest); err != nil || ok {
		t.Errorf("BlobLinked in another repository = %v, %v; want false", ok, err)
	}
	if ok, err := m.BlobLinked(bg, "missing", b.Digest); err != nil || ok {
		t.Errorf("BlobLinked in a missing repository = %v, %v; want false, nil", ok, err)
	}
	wantErr(t, "UnlinkBlob of an unlinked blob", m.UnlinkBlob(bg, "other", b.Digest), driver.ErrNotFound)
	must(t, "UnlinkBlob", m.UnlinkBlob(bg, "app", b.Digest))
	wantErr(t, "UnlinkBlob twice", m.UnlinkBlob(bg, "app", b.Digest), driver.ErrNotFound)

	_, _, err = m.ListLinks(bg, "missing", "", 10)
	wantErr(t, "ListLinks of a missing repository", err, driver.ErrNotFound)
	var want []digest.Digest
	for i := range 6 {
		b := testBlob(fmt.Sprint("l", i), "k")
		_, _, err := m.PutBlob(bg, b)
		must(t, "PutBlob", err)
		must(t, "LinkBlob", m.LinkBlob(bg, "app", b.Digest, at(i)))
		want = append(want, b.Digest)
	}
	slices.Sort(want)
	checkPages(t, "ListLinks", want, "", func(after digest.Digest, limit int) ([]digest.Digest, bool, error) {
		return m.ListLinks(bg, "app", after, limit)
	})

	// Deleting a blob record removes its links.
	must(t, "LinkBlob", m.LinkBlob(bg, "other", want[0], at(1)))
	_, err = m.DeleteBlob(bg, want[0])
	must(t, "DeleteBlob", err)
	if ok, err := m.BlobLinked(bg, "app", want[0]); err != nil || ok {
		t.Errorf("BlobLinked after DeleteBlob = %v, %v; want false", ok, err)
	}
	if l, _, err := m.CountBlobReferences(bg, want[0]); err != nil || l != 0 {
		t.Errorf("links after DeleteBlob = %d, %v; want 0", l, err)
	}
}

func testLinkPruner(t *testing.T, open openRegistry) {
	m := open(t)
	p, ok := m.(driver.LinkPruner)
	if !ok {
		t.Skipf("%T does not implement driver.LinkPruner", m)
	}
	mustCreateRepo(t, m, repo("a"))
	mustCreateRepo(t, m, repo("b"))
	link := func(r, name string, n int) digest.Digest {
		t.Helper()
		b := testBlob(name, "k-"+name)
		_, _, err := m.PutBlob(bg, b)
		must(t, "PutBlob", err)
		must(t, "LinkBlob", m.LinkBlob(bg, r, b.Digest, at(n)))
		return b.Digest
	}
	linked := func(r string, d digest.Digest) bool {
		t.Helper()
		ok, err := m.BlobLinked(bg, r, d)
		must(t, "BlobLinked", err)
		return ok
	}
	// A deleted image whose layer only it used; a kept image sharing
	// another layer with the deleted one; a kept image whose digest is
	// linked like a blob.
	gone := manifest("a", "gone")
	kept := manifest("a", "kept")
	shared := link("a", "shared", 1)
	gone.Blobs = []digest.Digest{link("a", "gone/config", 1), link("a", "gone/layer", 1), shared}
	kept.Blobs = []digest.Digest{link("a", "kept/config", 1), shared}
	mustPutManifest(t, m, gone)
	mustPutManifest(t, m, kept)
	ownBytes := testBlob("kept", "k-kept")
	_, _, err := m.PutBlob(bg, ownBytes)
	must(t, "PutBlob", err)
	must(t, "LinkBlob", m.LinkBlob(bg, "a", kept.Digest, at(1)))
	_, err = m.DeleteManifest(bg, "a", gone.Digest, "gc", at(2))
	must(t, "DeleteManifest", err)
	// Links no manifest ever referenced: an old one, one refreshed within
	// the grace period, one whose refresh came with an earlier time (it
	// never moves back), one to a blob only another repository's manifest
	// references, and one in another repository.
	old := link("a", "old", 1)
	refreshed := link("a", "refreshed", 1)
	must(t, "LinkBlob again", m.LinkBlob(bg, "a", refreshed, at(60)))
	recent := link("a", "recent", 60)
	must(t, "LinkBlob with an earlier time", m.LinkBlob(bg, "a", recent, at(1)))
	elsewhere := link("a", "elsewhere", 1)
	inB := manifest("b", "in-b")
	inB.Blobs = []digest.Digest{elsewhere}
	mustPutManifest(t, m, inB)
	otherRepo := link("b", "other-repo", 1)

	n, err := p.PruneLinks(bg, "a", at(50))
	must(t, "PruneLinks", err)
	if n != 4 {
		t.Errorf("PruneLinks = %d; want 4", n)
	}
	for name, c := range map[string]struct {
		repo string
		d    digest.Digest
		want bool
	}{
		"the deleted image's config":                {"a", gone.Blobs[0], false},
		"the deleted image's layer":                 {"a", gone.Blobs[1], false},
		"an old unreferenced link":                  {"a", old, false},
		"a link only another repository references": {"a", elsewhere, false},
		"a layer shared with a kept image":          {"a", shared, true},
		"the kept image's config":                   {"a", kept.Blobs[0], true},
		"the kept image's own bytes":                {"a", kept.Digest, true},
		"a link refreshed within the grace period":  {"a", refreshed, true},
		"a link made within the grace period":       {"a", recent, true},
		"a link in another repository":              {"b", otherRepo, true},
	} {
		if got := linked(c.repo, c.d); got != c.want {
			t.Errorf("%s: linked after PruneLinks = %v; want %v", name, got, c.want)
		}
	}
	if n, err := p.PruneLinks(bg, "a", at(50)); err != nil || n != 0 {
		t.Errorf("PruneLinks again = %d, %v; want 0, nil", n, err)
	}
	_, err = p.PruneLinks(bg, "missing", at(50))
	wantErr(t, "PruneLinks of a missing repository", err, driver.ErrNotFound)
	// Pruned links free the blob for collection; links kept keep theirs.
	_, err = m.DeleteUnreferencedBlob(bg, old, at(100))
	must(t, "DeleteUnreferencedBlob of a pruned blob", err)
	_, err = m.DeleteUnreferencedBlob(bg, refreshed, at(100))
	wantErr(t, "DeleteUnreferencedBlob of a refreshed link's blob", err, driver.ErrConflict)

	// Racing a manifest push that references an old link: the link stays
	// when the manifest is stored first; otherwise the pusher, reading
	// after storing its manifest, sees it gone (and can link it again).
	for i := range 8 {
		d := link("b", fmt.Sprint("contended-", i), 1)
		mf := manifest("b", fmt.Sprint("racer-", i))
		mf.Blobs = []digest.Digest{d}
		var seen bool
		var putErr, pruneErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, putErr = m.PutManifest(bg, mf); putErr == nil {
				seen, putErr = m.BlobLinked(bg, "b", d)
			}
		})
		wg.Go(func() { _, pruneErr = p.PruneLinks(bg, "b", at(50)) })
		wg.Wait()
		must(t, "PutManifest", putErr)
		must(t, "PruneLinks", pruneErr)
		if now := linked("b", d); now != seen {
			t.Errorf("PutManifest racing PruneLinks: the pusher saw linked = %v, afterwards linked = %v", seen, now)
		}
		if n, err := p.PruneLinks(bg, "b", at(50)); err != nil || linked("b", d) != seen {
			t.Errorf("PruneLinks after the manifest is stored = %d, %v: a referenced link must stay", n, err)
		}
	}
}

func testReferences(t *testing.T, open openRegistry) {
	m := open(t)
	mustCreateRepo(t, m, repo("a"))
	mustCreateRepo(t, m, repo("b"))
	layer := digestOf("shared-layer")
	for _, r := range []string{"a", "b"} {
		for i := range 2 {
			mf := manifest(r, fmt.Sprint("img", i))
			mf.Blobs = append(mf.Blobs, layer, layer) // listed twice: counted once
			mustPutManifest(t, m, mf)
		}
	}
	blob := testBlob("shared-layer")
	blob.Digest = layer
	_, _, err := m.PutBlob(bg, blob)
	must(t, "PutBlob", err)
	must(t, "LinkBlob", m.LinkBlob(bg, "a", layer, at(1)))
	links, manifests, err := m.CountBlobReferences(bg, layer)
	must(t, "CountBlobReferences", err)
	if links != 1 || manifests != 4 {
		t.Errorf("CountBlobReferences = %d links, %d manifests; want 1 and 4", links, manifests)
	}
	if l, n, err := m.CountBlobReferences(bg, digestOf("unknown")); err != nil || l != 0 || n != 0 {
		t.Errorf("CountBlobReferences of an unknown digest = %d, %d, %v", l, n, err)
	}
	_, err = m.DeleteManifest(bg, "b", manifest("b", "img0").Digest, "gc", at(2))
	must(t, "DeleteManifest", err)
	if _, n, err := m.CountBlobReferences(bg, layer); err != nil || n != 3 {
		t.Errorf("manifest references after a delete = %d, %v; want 3", n, err)
	}

	// Garbage collection deletes only unreferenced blobs past the grace
	// period.
	_, err = m.DeleteUnreferencedBlob(bg, digestOf("unknown"), at(100))
	wantErr(t, "DeleteUnreferencedBlob of an unknown digest", err, driver.ErrNotFound)
	_, err = m.DeleteUnreferencedBlob(bg, layer, at(100))
	wantErr(t, "DeleteUnreferencedBlob of a linked, referenced blob", err, driver.ErrConflict)
	must(t, "UnlinkBlob", m.UnlinkBlob(bg, "a", layer))
	_, err = m.DeleteUnreferencedBlob(bg, layer, at(100))
	wantErr(t, "DeleteUnreferencedBlob of a referenced blob", err, driver.ErrConflict)
	loose := testBlob("loose", "k")
	loose.CreatedAt = at(10)
	_, _, err = m.PutBlob(bg, loose)
	must(t, "PutBlob", err)
	_, err = m.DeleteUnreferencedBlob(bg, loose.Digest, at(10))
	wantErr(t, "DeleteUnreferencedBlob within the grace period", err, driver.ErrConflict)
	must(t, "LinkBlob", m.LinkBlob(bg, "b", loose.Digest, at(11)))
	_, err = m.DeleteUnreferencedBlob(bg, loose.Digest, at(100))
	wantErr(t, "DeleteUnreferencedBlob of a linked blob", err, driver.ErrConflict)
	must(t, "UnlinkBlob", m.UnlinkBlob(bg, "b", loose.Digest))
	// A second writer of the same content renews the grace period: the
	// blob it is about to link is not collected under it.
	rewrite := testBlob("loose", "k2")
	rewrite.CreatedAt = at(100)
	if _, created, err := m.PutBlob(bg, rewrite); err != nil || created {
		t.Fatalf("PutBlob of an existing blob = created %v, %v", created, err)
	}
	_, err = m.DeleteUnreferencedBlob(bg, loose.Digest, at(100))
	wantErr(t, "DeleteUnreferencedBlob of a blob written again", err, driver.ErrConflict)
	loose.CreatedAt = rewrite.CreatedAt
	del, err := m.DeleteUnreferencedBlob(bg, loose.Digest, at(101))
	must(t, "DeleteUnreferencedBlob", err)
	if d := diffBlob(del, loose); d != "" {
		t.Errorf("DeleteUnreferencedBlob returned: %s", d)
	}
	_, err = m.GetBlob(bg, loose.Digest)
	wantErr(t, "GetBlob after DeleteUnreferencedBlob", err, driver.ErrNotFound)

	// A manifest's own bytes are a blob that only the manifest record
	// refers to: it is referenced while any repository holds the manifest.
	held := manifest("a", "held")
	mustPutManifest(t, m, held)
	content := testBlob("manifest-bytes", "k")
	content.Digest, content.CreatedAt = held.Digest, at(10)
	_, _, err = m.PutBlob(bg, content)
	must(t, "PutBlob", err)
	_, err = m.DeleteUnreferencedBlob(bg, held.Digest, at(100))
	wantErr(t, "DeleteUnreferencedBlob of a manifest's bytes", err, driver.ErrConflict)
	_, err = m.DeleteManifest(bg, "a", held.Digest, "gc", at(12))
	must(t, "DeleteManifest", err)
	_, err = m.DeleteUnreferencedBlob(bg, held.Digest, at(100))
	must(t, "DeleteUnreferencedBlob of a deleted manifest's bytes", err)

	// Racing a link: either the link wins and the blob stays, or the
	// deletion wins and the link fails with ErrNotFound.
	for i := range 8 {
		b := testBlob(fmt.Sprint("contended-", i), "k")
		_, _, err := m.PutBlob(bg, b)
		must(t, "PutBlob", err)
		var linkErr, delErr error
		var wg sync.WaitGroup
		wg.Go(func() { linkErr = m.LinkBlob(bg, "a", b.Digest, at(50)) })
		wg.Go(func() { _, delErr = m.DeleteUnreferencedBlob(bg, b.Digest, at(100)) })
		wg.Wait()
		linked, err := m.BlobLinked(bg, "a", b.Digest)
		must(t, "BlobLinked", err)
		_, getErr := m.GetBlob(bg, b.Digest)
		switch {
		case linkErr == nil && errors.Is(delErr, driver.ErrConflict):
			if !linked || getErr != nil {
				t.Errorf("link won but linked = %v, GetBlob: %v", linked, getErr)
			}
		case delErr == nil && errors.Is(linkErr, driver.ErrNotFound):
			if linked || !errors.Is(getErr, driver.ErrNotFound) {
				t.Errorf("deletion won but linked = %v, GetBlob: %v", linked, getErr)
			}
		default:
			t.Errorf("LinkBlob racing DeleteUnreferencedBlob: link %v, delete %v", linkErr, delErr)
		}
	}

	// Index → child references.
	child := manifest("a", "img0").Digest
	var parents []digest.Digest
	for i := range 4 {
		idx := &driver.Manifest{Repository: "a", Digest: digestOf(fmt.Sprint("index", i)), MediaType: "application/vnd.oci.image.index.v1+json",
			Size: 10, Children: []digest.Digest{child, manifest("a", "img1").Digest}, PushedAt: at(3)}
		mustPutManifest(t, m, idx)
		parents = append(parents, idx.Digest)
	}
	slices.Sort(parents)
	checkPages(t, "ListParents", parents, "", func(after digest.Digest, limit int) ([]digest.Digest, bool, error) {
		return m.ListParents(bg, "a", child, after, limit)
	})
	got, err := m.GetManifest(bg, "a", parents[0])
	must(t, "GetManifest", err)
	if len(got.Children) != 2 || got.Children[0] != child {
		t.Errorf("index Children = %v", got.Children)
	}
	page, _, err := m.ListParents(bg, "b", child, "", 10)
	if err != nil || len(page) != 0 {
		t.Errorf("ListParents in another repository = %v, %v", page, err)
	}
	_, _, err = m.ListParents(bg, "missing", child, "", 10)
	wantErr(t, "ListParents of a missing repository", err, driver.ErrNotFound)
}

func testPolicies(t *testing.T, open openRegistry) {
	m := open(t)
	doc := []byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`)
	wantErr(t, "PutPolicy in a missing repository", m.PutPolicy(bg, &driver.Policy{Repository: "app", Document: doc}), driver.ErrNotFound)
	mustCreateRepo(t, m, repo("app"))
	wantErr(t, "PutPolicy of invalid JSON", m.PutPolicy(bg, &driver.Policy{Repository: "app", Document: []byte("{")}), driver.ErrInvalidArgument)
	_, err := m.GetPolicy(bg, "app")
	wantErr(t, "GetPolicy", err, driver.ErrNotFound)
	wantErr(t, "DeletePolicy", m.DeletePolicy(bg, "app"), driver.ErrNotFound)
	must(t, "PutPolicy", m.PutPolicy(bg, &driver.Policy{Repository: "app", Document: doc, UpdatedAt: at(1), UpdatedBy: "alice"}))
	got, err := m.GetPolicy(bg, "app")
	must(t, "GetPolicy", err)
	if string(got.Document) != string(doc) || got.UpdatedBy != "alice" || !sameTime(got.UpdatedAt, at(1)) {
		t.Errorf("GetPolicy = %+v", got)
	}
	must(t, "PutPolicy replace", m.PutPolicy(bg, &driver.Policy{Repository: "app", Document: []byte(`{"rules":[]}`), UpdatedAt: at(2), UpdatedBy: "bob"}))
	got, err = m.GetPolicy(bg, "app")
	must(t, "GetPolicy", err)
	if string(got.Document) != `{"rules":[]}` || got.UpdatedBy != "bob" {
		t.Errorf("GetPolicy after replace = %+v", got)
	}
	var want []string
	for _, r := range []string{"c", "b", "d/e", "a"} {
		mustCreateRepo(t, m, repo(r))
		must(t, "PutPolicy", m.PutPolicy(bg, &driver.Policy{Repository: r, Document: doc}))
		want = append(want, r)
	}
	mustCreateRepo(t, m, repo("no-policy"))
	want = append(want, "app")
	slices.Sort(want)
	checkPages(t, "ListPolicies", want, "", func(after string, limit int) ([]string, bool, error) {
		page, more, err := m.ListPolicies(bg, after, limit)
		return keys(page, func(p *driver.Policy) string { return p.Repository }), more, err
	})
	must(t, "DeletePolicy", m.DeletePolicy(bg, "app"))
	_, err = m.GetPolicy(bg, "app")
	wantErr(t, "GetPolicy after delete", err, driver.ErrNotFound)
}

func testScanResults(t *testing.T, open openRegistry) {
	m := open(t)
	d := digestOf("image")
	put := func(scanner, kind, data string, n int) error {
		return m.PutScanResult(bg, &driver.ScanResult{Digest: d, Scanner: scanner, Kind: kind, Data: []byte(data), ScannedAt: at(n)})
	}
	wantErr(t, "PutScanResult of an unknown kind", put("s", "sbom", "{}", 1), driver.ErrInvalidArgument)
	wantErr(t, "PutScanResult of invalid JSON", put("s", driver.ScanReport, "{", 1), driver.ErrInvalidArgument)
	_, err := m.GetScanResult(bg, d, "s", driver.ScanReport)
	wantErr(t, "GetScanResult", err, driver.ErrNotFound)
	if rs, err := m.ListScanResults(bg, d); err != nil || rs == nil || len(rs) != 0 {
		t.Errorf("ListScanResults with none = %v, %v; want an empty slice", rs, err)
	}
	must(t, "PutScanResult", put("trivy", driver.ScanReport, `{"v":1}`, 1))
	must(t, "PutScanResult", put("trivy", driver.ScanInventory, `{"packages":[]}`, 1))
	must(t, "PutScanResult", put("native", driver.ScanReport, `{"v":1}`, 1))
	must(t, "PutScanResult replace", put("trivy", driver.ScanReport, `{"v":2}`, 2))
	got, err := m.GetScanResult(bg, d, "trivy", driver.ScanReport)
	must(t, "GetScanResult", err)
	if string(got.Data) != `{"v":2}` || !sameTime(got.ScannedAt, at(2)) || got.Digest != d {
		t.Errorf("GetScanResult = %+v", got)
	}
	rs, err := m.ListScanResults(bg, d)
	must(t, "ListScanResults", err)
	order := keys(rs, func(r *driver.ScanResult) string { return r.Scanner + "/" + r.Kind })
	if want := []string{"native/report", "trivy/inventory", "trivy/report"}; !slices.Equal(order, want) {
		t.Errorf("ListScanResults = %v, want %v", order, want)
	}
	n, err := m.DeleteScanResults(bg, d)
	must(t, "DeleteScanResults", err)
	if n != 3 {
		t.Errorf("DeleteScanResults removed %d, want 3", n)
	}
	if n, err := m.DeleteScanResults(bg, d); err != nil || n != 0 {
		t.Errorf("DeleteScanResults again = %d, %v", n, err)
	}
}

func testTokens(t *testing.T, open openRegistry) {
	m := open(t)
	tok := &driver.Token{ID: "t1", Name: "ci", Username: "berth-token-t1", SecretHash: []byte{1, 2, 3, 0, 255},
		Scopes: []string{"repository:team/*:pull,push"}, CreatedBy: "admin", CreatedAt: at(0), ExpiresAt: at(3600),
		RatePerSecond: 2.5, RateBurst: 10}
	_, err := m.GetToken(bg, "t1")
	wantErr(t, "GetToken", err, driver.ErrNotFound)
	_, err = m.GetTokenByUsername(bg, "berth-token-t1")
	wantErr(t, "GetTokenByUsername", err, driver.ErrNotFound)
	wantErr(t, "RevokeToken", m.RevokeToken(bg, "t1", at(1)), driver.ErrNotFound)
	must(t, "CreateToken", m.CreateToken(bg, tok))
	dupID := *tok
	dupID.Username = "other"
	wantErr(t, "CreateToken with a taken ID", m.CreateToken(bg, &dupID), driver.ErrAlreadyExists)
	dupUser := *tok
	dupUser.ID = "t2"
	wantErr(t, "CreateToken with a taken username", m.CreateToken(bg, &dupUser), driver.ErrAlreadyExists)
	check := func(got *driver.Token, revoked time.Time) {
		t.Helper()
		if got.ID != "t1" || got.Name != "ci" || got.Username != tok.Username || string(got.SecretHash) != string(tok.SecretHash) ||
			!slices.Equal(got.Scopes, tok.Scopes) || got.CreatedBy != "admin" || !sameTime(got.CreatedAt, at(0)) ||
			!sameTime(got.ExpiresAt, at(3600)) || !sameTime(got.RevokedAt, revoked) || got.RatePerSecond != 2.5 || got.RateBurst != 10 {
			t.Errorf("token = %+v", got)
		}
	}
	got, err := m.GetToken(bg, "t1")
	must(t, "GetToken", err)
	check(got, time.Time{})
	got.SecretHash[0] = 9
	got, err = m.GetTokenByUsername(bg, tok.Username)
	must(t, "GetTokenByUsername", err)
	check(got, time.Time{})
	must(t, "RevokeToken", m.RevokeToken(bg, "t1", at(10)))
	must(t, "RevokeToken again", m.RevokeToken(bg, "t1", at(20)))
	got, err = m.GetToken(bg, "t1")
	must(t, "GetToken", err)
	check(got, at(10))

	want := []string{"t1"}
	for _, id := range []string{"t3", "t2", "a", "z"} {
		must(t, "CreateToken", m.CreateToken(bg, &driver.Token{ID: id, Username: "u-" + id, SecretHash: []byte("h"), CreatedAt: at(0)}))
		want = append(want, id)
	}
	slices.Sort(want)
	checkPages(t, "ListTokens", want, "", func(after string, limit int) ([]string, bool, error) {
		page, more, err := m.ListTokens(bg, after, limit)
		return keys(page, func(t *driver.Token) string { return t.ID }), more, err
	})
}

func event(typ, subject string) driver.Event {
	return driver.Event{Type: typ, Subject: subject, Data: []byte(`{"subject":"` + subject + `"}`), CreatedAt: at(0)}
}

func testOutbox(t *testing.T, open openRegistry) {
	t.Run("WrittenWithChanges", func(t *testing.T) {
		m := open(t)
		claim := func() []string {
			t.Helper()
			evs, err := m.ClaimEvents(bg, at(100), time.Minute, 100)
			must(t, "ClaimEvents", err)
			var ids []int64
			var out []string
			for _, e := range evs {
				out = append(out, e.Type+" "+e.Subject)
				ids = append(ids, e.ID)
			}
			must(t, "AckEvents", m.AckEvents(bg, ids...))
			return out
		}
		must(t, "CreateRepository", m.CreateRepository(bg, repo("app"), event("repo.created", "app"), event("audit", "app")))
		wantErr(t, "CreateRepository twice", m.CreateRepository(bg, repo("app"), event("repo.created", "again")), driver.ErrAlreadyExists)
		mf := manifest("app", "a")
		_, err := m.PutManifest(bg, mf, event("manifest.pushed", "app@a"))
		must(t, "PutManifest", err)
		_, err = m.SetTag(bg, tag("app", "v1", mf.Digest, 1), event("tag.set", "app:v1"))
		must(t, "SetTag", err)
		_, err = m.SetTag(bg, tag("app", "v1", digestOf("missing"), 1), event("tag.set", "app:missing"))
		wantErr(t, "SetTag to a missing manifest", err, driver.ErrNotFound)
		if got, want := claim(), []string{"repo.created app", "audit app", "manifest.pushed app@a", "tag.set app:v1"}; !slices.Equal(got, want) {
			t.Errorf("events = %q, want %q (only successful changes, in order)", got, want)
		}

		r := repo("app")
		r.ImmutableTags = true
		must(t, "UpdateRepository", m.UpdateRepository(bg, r, event("repo.updated", "app")))
		_, err = m.SetTag(bg, tag("app", "v1", mf.Digest, 2), event("tag.set", "app:v1 again"))
		must(t, "SetTag to the current digest", err)
		b := manifest("app", "b")
		mustPutManifest(t, m, b)
		_, err = m.SetTag(bg, tag("app", "v1", b.Digest, 3), event("tag.set", "app:v1 immutable"))
		wantErr(t, "SetTag of an immutable tag", err, driver.ErrAlreadyExists)
		_, err = m.DeleteTag(bg, "app", "v1", "u", at(4), event("tag.deleted", "app:v1"))
		must(t, "DeleteTag", err)
		_, err = m.DeleteManifest(bg, "app", b.Digest, "u", at(5), event("manifest.deleted", "app@b"))
		must(t, "DeleteManifest", err)
		must(t, "PutPolicy", m.PutPolicy(bg, &driver.Policy{Repository: "app", Document: []byte("{}")}, event("policy.put", "app")))
		must(t, "DeletePolicy", m.DeletePolicy(bg, "app", event("policy.deleted", "app")))
		must(t, "PutScanResult", m.PutScanResult(bg, &driver.ScanResult{Digest: mf.Digest, Scanner: "s", Kind: driver.ScanReport, Data: []byte("{}")}, event("scan.done", "a")))
		must(t, "CreateToken", m.CreateToken(bg, &driver.Token{ID: "t", Username: "t", SecretHash: []byte("h")}, event("token.created", "t")))
		wantErr(t, "CreateToken twice", m.CreateToken(bg, &driver.Token{ID: "t", Username: "t2"}, event("token.created", "t again")), driver.ErrAlreadyExists)
		must(t, "RevokeToken", m.RevokeToken(bg, "t", at(6), event("token.revoked", "t")))
		must(t, "DeleteRepository", m.DeleteRepository(bg, "app", event("repo.deleted", "app")))
		must(t, "AppendEvents", m.AppendEvents(bg, event("standalone", "x")))
		want := []string{"repo.updated app", "tag.set app:v1 again", "tag.deleted app:v1", "manifest.deleted app@b", "policy.put app",
			"policy.deleted app", "scan.done a", "token.created t", "token.revoked t", "repo.deleted app", "standalone x"}
		if got := claim(); !slices.Equal(got, want) {
			t.Errorf("events = %q,\nwant %q", got, want)
		}
		if got := claim(); len(got) != 0 {
			t.Errorf("events after ack = %q", got)
		}
	})

	t.Run("Leases", func(t *testing.T) {
		m := open(t)
		evs, err := m.ClaimEvents(bg, at(0), time.Minute, 10)
		must(t, "ClaimEvents", err)
		if evs == nil || len(evs) != 0 {
			t.Errorf("ClaimEvents of an empty outbox = %v, want an empty slice", evs)
		}
		_, err = m.ClaimEvents(bg, at(0), time.Minute, 0)
		wantErr(t, "ClaimEvents with limit 0", err, driver.ErrInvalidArgument)
		for i := range 5 {
			must(t, "AppendEvents", m.AppendEvents(bg, event("e", fmt.Sprint(i))))
		}
		first, err := m.ClaimEvents(bg, at(0), time.Minute, 3)
		must(t, "ClaimEvents", err)
		if subj := keys(first, func(e *driver.Event) string { return e.Subject }); !slices.Equal(subj, []string{"0", "1", "2"}) {
			t.Fatalf("first claim = %v, want the 3 oldest", subj)
		}
		if string(first[0].Data) != `{"subject":"0"}` || !sameTime(first[0].CreatedAt, at(0)) || first[0].ID >= first[1].ID {
			t.Errorf("claimed event = %+v", first[0])
		}
		second, err := m.ClaimEvents(bg, at(30), time.Minute, 10)
		must(t, "ClaimEvents", err)
		if subj := keys(second, func(e *driver.Event) string { return e.Subject }); !slices.Equal(subj, []string{"3", "4"}) {
			t.Errorf("claim during the lease = %v, want the unclaimed [3 4]", subj)
		}
		must(t, "AckEvents", m.AckEvents(bg, first[0].ID, 1<<40))
		again, err := m.ClaimEvents(bg, at(60), time.Minute, 10)
		must(t, "ClaimEvents", err)
		if subj := keys(again, func(e *driver.Event) string { return e.Subject }); !slices.Equal(subj, []string{"1", "2"}) {
			t.Errorf("claim when the first lease expires = %v, want the unacknowledged [1 2]", subj)
		}
		must(t, "AckEvents", m.AckEvents(bg))
	})

	t.Run("ConcurrentClaims", func(t *testing.T) {
		m := open(t)
		const n = 60
		for i := range n {
			must(t, "AppendEvents", m.AppendEvents(bg, event("e", fmt.Sprint(i))))
		}
		var mu sync.Mutex
		seen := map[int64]int{}
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				for {
					evs, err := m.ClaimEvents(bg, at(0), time.Hour, 4)
					if err != nil {
						t.Errorf("ClaimEvents: %v", err)
						return
					}
					if len(evs) == 0 {
						return
					}
					mu.Lock()
					for _, e := range evs {
						seen[e.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != n {
			t.Errorf("claimed %d distinct events, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("event %d claimed %d times within its lease", id, c)
			}
		}
	})
}

func testRegistryCancellation(t *testing.T, open openRegistry) {
	m := open(t)
	mustCreateRepo(t, m, repo("app"))
	mf := manifest("app", "a")
	mustPutManifest(t, m, mf)
	c := cancelled()
	check := func(op string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s with a cancelled context succeeded", op)
		}
	}
	check("CreateRepository", m.CreateRepository(c, repo("b")))
	_, err := m.GetRepository(c, "app")
	check("GetRepository", err)
	_, _, err = m.ListRepositories(c, "", 10)
	check("ListRepositories", err)
	_, err = m.PutManifest(c, manifest("app", "b"))
	check("PutManifest", err)
	_, _, err = m.ListManifests(c, "app", "", 10)
	check("ListManifests", err)
	_, err = m.SetTag(c, tag("app", "v1", mf.Digest, 1))
	check("SetTag", err)
	_, _, err = m.ListTags(c, "app", "", 10)
	check("ListTags", err)
	_, _, err = m.ListReferrers(c, "app", mf.Digest, "", "", 10)
	check("ListReferrers", err)
	_, err = m.ClaimEvents(c, at(0), time.Minute, 10)
	check("ClaimEvents", err)
	check("DeleteRepository", m.DeleteRepository(c, "app"))
	if _, err := m.GetTag(bg, "app", "v1"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("cancelled SetTag set the tag: %v", err)
	}
	if _, err := m.GetRepository(bg, "app"); err != nil {
		t.Errorf("cancelled DeleteRepository deleted: %v", err)
	}
}
