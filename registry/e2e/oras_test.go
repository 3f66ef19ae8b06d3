package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestORAS drives oras: login, artifact push and pull, attach and discover
// (the referrers API, with an artifactType filter), a copy between
// repositories with its referrers, a multi-platform index (manifest index
// create), tag and repository lists, and deletes.
func TestORAS(t *testing.T) {
	lookTool(t, "oras")
	t.Parallel()
	forEachTransport(t, testORAS)
}

func testORAS(t *testing.T, s *server) {
	o := newCLI(t, "oras")
	var flags []string
	if s.TLS {
		flags = []string{"--ca-file", s.CAFile}
	} else {
		flags = []string{"--plain-http"}
	}
	oras := func(args ...string) string {
		t.Helper()
		return o.run(append(args, flags...)...)
	}
	ref := func(r string) string { return s.Host + "/" + r }
	// oras cp takes the flags once per side.
	side := func(prefix string) []string {
		return append([]string{"--" + prefix + strings.TrimPrefix(flags[0], "--")}, flags[1:]...)
	}
	cp := func(args ...string) {
		t.Helper()
		o.run(slices.Concat([]string{"cp"}, args, side("from-"), side("to-"))...)
	}

	o.runStdin(s.Password, append([]string{"login", "-u", s.User, "--password-stdin", s.Host}, flags...)...)

	// Push an artifact of two files.
	writeFile(t, o.dir, "readme.txt", "hello from berth\n")
	writeFile(t, o.dir, "data.json", `{"answer":42}`)
	oras("push", "--artifact-type", "application/vnd.berth.test.bundle", ref("oras/art:v1"), "readme.txt:text/plain", "data.json:application/json")
	art := s.digest(t, "oras/art:v1")

	// Pull it back: same files, same bytes.
	out := t.TempDir()
	oras("pull", "-o", out, ref("oras/art:v1"))
	for _, f := range []string{"readme.txt", "data.json"} {
		want, _ := os.ReadFile(filepath.Join(o.dir, f))
		got, err := os.ReadFile(filepath.Join(out, f))
		if err != nil || string(got) != string(want) {
			t.Fatalf("pulled %s = %q, %v; want %q", f, got, err, want)
		}
	}

	// Attach a signature and an SBOM; discover them.
	writeFile(t, o.dir, "sig.txt", "signature")
	writeFile(t, o.dir, "sbom.json", `{"spdxVersion":"SPDX-2.3"}`)
	oras("attach", "--artifact-type", "application/vnd.berth.signature", ref("oras/art:v1"), "sig.txt:text/plain")
	oras("attach", "--artifact-type", "application/spdx+json", ref("oras/art:v1"), "sbom.json:application/spdx+json")
	refs := s.referrers(t, "oras/art", art)
	if len(refs) != 2 {
		t.Fatalf("referrers API lists %d referrers, want 2: %+v", len(refs), refs)
	}
	var sig v1.Hash
	for _, r := range refs {
		if r.ArtifactType == "application/vnd.berth.signature" {
			sig = r.Digest
		}
	}
	if sig == (v1.Hash{}) {
		t.Fatalf("no signature among the referrers %+v", refs)
	}
	found := discover(t, oras("discover", "--format", "json", ref("oras/art:v1")))
	if len(found) != 2 || !slices.ContainsFunc(found, func(d discovered) bool { return d.Digest == sig.String() }) {
		t.Fatalf("oras discover: %+v, want the 2 referrers including %s", found, sig)
	}
	found = discover(t, oras("discover", "--format", "json", "--artifact-type", "application/vnd.berth.signature", ref("oras/art:v1")))
	if len(found) != 1 || found[0].Digest != sig.String() || found[0].ArtifactType != "application/vnd.berth.signature" {
		t.Fatalf("oras discover --artifact-type: %+v, want only %s", found, sig)
	}

	// Copy with referrers to another repository.
	cp("-r", ref("oras/art:v1"), ref("oras-copy/art:v1"))
	if got := s.digest(t, "oras-copy/art:v1"); got != art {
		t.Fatalf("copied artifact digest %s, want %s", got, art)
	}
	if got := s.referrers(t, "oras-copy/art", art); len(got) != 2 {
		t.Fatalf("copy has %d referrers, want 2", len(got))
	}

	// A multi-platform index from images in the repository.
	amd, arm := testImage(t, "amd64"), testImage(t, "arm64")
	lay := writeLayout(t, map[string]v1.Image{"amd64": amd, "arm64": arm}, nil)
	for _, tag := range []string{"amd64", "arm64"} {
		o.run(slices.Concat([]string{"cp", "--from-oci-layout", lay + ":" + tag, ref("oras/img:" + tag)}, side("to-"))...)
	}
	if got := s.digest(t, "oras/img:arm64"); got != digestOf(t, arm) {
		t.Fatalf("image copied from the layout: digest %s, want %s", got, digestOf(t, arm))
	}
	oras("manifest", "index", "create", ref("oras/img:multi"), "amd64", "arm64")
	s.checkIndex(t, "oras/img:multi", amd, arm)

	// Tags and repositories.
	tags := strings.Fields(oras("repo", "tags", ref("oras/img")))
	slices.Sort(tags)
	if want := []string{"amd64", "arm64", "multi"}; !slices.Equal(tags, want) {
		t.Fatalf("oras repo tags: %v, want %v", tags, want)
	}
	repos := strings.Fields(oras("repo", "ls", s.Host))
	if want := []string{"oras-copy/art", "oras/art", "oras/img"}; !slices.Equal(repos, want) {
		t.Fatalf("oras repo ls: %v, want %v", repos, want)
	}

	// Delete the signature: it leaves the referrers list.
	oras("manifest", "delete", "--force", ref("oras/art@"+sig.String()))
	if got := s.referrers(t, "oras/art", art); len(got) != 1 || got[0].Digest == sig {
		t.Fatalf("referrers after deleting the signature: %+v", got)
	}
	// Delete the artifact by tag (oras resolves it and deletes the manifest).
	oras("manifest", "delete", "--force", ref("oras/art:v1"))
	if s.exists(t, "oras/art@"+art.String()) {
		t.Fatal("artifact still there after oras manifest delete")
	}
	if !s.exists(t, "oras-copy/art@"+art.String()) {
		t.Fatal("deleting from one repository removed the artifact from another")
	}

	// Logout: then access is refused.
	o.run("logout", s.Host)
	if _, err := o.try(append([]string{"repo", "tags", ref("oras/img")}, flags...)...); err == nil {
		t.Fatal("oras repo tags without credentials succeeded")
	}
}

// discovered is a referrer as oras discover --format json prints it.
type discovered struct {
	Digest       string `json:"digest"`
	ArtifactType string `json:"artifactType"`
}

func discover(t *testing.T, out string) []discovered {
	t.Helper()
	var v struct {
		Referrers []discovered `json:"referrers"`
		Manifests []discovered `json:"manifests"` // oras before 1.2
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("oras discover output: %v\n%s", err, out)
	}
	return append(v.Referrers, v.Manifests...)
}
