package e2e_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestCrane drives crane (go-containerregistry): auth login, push from an
// OCI layout, a multi-platform index with index append, pull into an OCI
// layout, manifest and blob reads, a copy between repositories, tag, tag
// list, catalog and delete.
func TestCrane(t *testing.T) {
	lookTool(t, "crane")
	t.Parallel()
	forEachTransport(t, testCrane)
}

func testCrane(t *testing.T, s *server) {
	var env []string
	var flags []string
	if s.TLS {
		env = append(env, "SSL_CERT_FILE="+s.CAFile) // verify the server against its CA
	} else {
		flags = append(flags, "--insecure")
	}
	c := newCLI(t, "crane", env...)
	crane := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(c.run(append(args, flags...)...))
	}
	ref := func(r string) string { return s.Host + "/" + r }

	// Login stores the credentials every later command uses.
	c.runStdin(s.Password, append([]string{"auth", "login", s.Host, "-u", s.User, "--password-stdin"}, flags...)...)
	if _, err := c.try(append([]string{"auth", "get", s.Host}, flags...)...); err != nil {
		t.Fatalf("crane auth get after login: %v", err)
	}

	amd, arm := testImage(t, "amd64"), testImage(t, "arm64")
	amdD, armD := digestOf(t, amd), digestOf(t, arm)

	// Push.
	out := crane("push", writeLayout(t, map[string]v1.Image{"amd64": amd}, nil), ref("crane/app:amd64"))
	if !strings.HasSuffix(out, "@"+amdD.String()) {
		t.Fatalf("crane push printed %q, want …@%s", out, amdD)
	}
	crane("push", writeLayout(t, map[string]v1.Image{"arm64": arm}, nil), ref("crane/app:arm64"))
	if got := s.digest(t, "crane/app:arm64"); got != armD {
		t.Fatalf("pushed arm64 digest %s, want %s", got, armD)
	}

	// A multi-platform index of the two.
	crane("index", "append", "-m", ref("crane/app:amd64"), "-m", ref("crane/app:arm64"), "-t", ref("crane/app:multi"))
	s.checkIndex(t, "crane/app:multi", amd, arm)
	multi := s.digest(t, "crane/app:multi")
	if got := crane("digest", ref("crane/app:multi")); got != multi.String() {
		t.Fatalf("crane digest %s, want %s", got, multi)
	}

	// Pull into an OCI layout.
	dir := filepath.Join(t.TempDir(), "pulled")
	crane("pull", "--format=oci", ref("crane/app:amd64"), dir)
	if got := layoutDigest(t, dir, ""); got != amdD {
		t.Fatalf("pulled digest %s, want %s", got, amdD)
	}
	// The manifest's bytes and a layer's bytes hash to their digests.
	if got := sha256Hex([]byte(crane("manifest", ref("crane/app:amd64")))); got != amdD.String() {
		t.Fatalf("crane manifest hashes to %s, want %s", got, amdD)
	}
	layers, err := amd.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := layers[1].Digest()
	if got := sha256Hex([]byte(c.run(append([]string{"blob", ref("crane/app@" + ld.String())}, flags...)...))); got != ld.String() {
		t.Fatalf("crane blob hashes to %s, want %s", got, ld)
	}

	// Copy the index to another repository (blobs are mounted).
	crane("copy", ref("crane/app:multi"), ref("crane-copy/app:v1"))
	if got := s.digest(t, "crane-copy/app:v1"); got != multi {
		t.Fatalf("copied index digest %s, want %s", got, multi)
	}
	s.checkIndex(t, "crane-copy/app:v1", amd, arm)

	// Tag, tag list, catalog.
	crane("tag", ref("crane/app:amd64"), "stable")
	if got := s.digest(t, "crane/app:stable"); got != amdD {
		t.Fatalf("crane tag: stable is %s, want %s", got, amdD)
	}
	tags := strings.Fields(crane("ls", ref("crane/app")))
	slices.Sort(tags)
	if want := []string{"amd64", "arm64", "multi", "stable"}; !slices.Equal(tags, want) {
		t.Fatalf("crane ls: %v, want %v", tags, want)
	}
	repos := strings.Fields(crane("catalog", s.Host))
	if want := []string{"crane-copy/app", "crane/app"}; !slices.Equal(repos, want) {
		t.Fatalf("crane catalog: %v, want %v", repos, want)
	}

	// Delete the index from the copy; the original stays.
	crane("delete", ref("crane-copy/app@"+multi.String()))
	if s.exists(t, "crane-copy/app@"+multi.String()) || s.exists(t, "crane-copy/app:v1") {
		t.Fatal("index still there after crane delete")
	}
	if !s.exists(t, "crane/app@"+multi.String()) {
		t.Fatal("crane delete in one repository removed the index from another")
	}
	// A tag delete (the manifest stays).
	crane("delete", ref("crane/app:stable"))
	if s.exists(t, "crane/app:stable") || !s.exists(t, "crane/app@"+amdD.String()) {
		t.Fatal("deleting a tag: the tag should go and the manifest stay")
	}

	// After logout, nothing is readable.
	c.run(append([]string{"auth", "logout", s.Host}, flags...)...)
	if _, err := c.try(append([]string{"digest", ref("crane/app:amd64")}, flags...)...); err == nil {
		t.Fatal("crane digest without credentials succeeded")
	}
}
