package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// forEachTransport runs fn against a fresh registryd over plain HTTP and
// over TLS with its generated CA.
func forEachTransport(t *testing.T, fn func(t *testing.T, s *server)) {
	for _, tc := range []struct {
		name  string
		plain bool
	}{{"http", true}, {"tls", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fn(t, startRegistryd(t, tc.plain))
		})
	}
}

// TestSkopeo drives skopeo (containers/image): login, push from an OCI
// layout, a multi-platform index with --all, a copy between repositories,
// pull into an OCI layout, inspect, tag list and delete.
func TestSkopeo(t *testing.T) {
	lookTool(t, "skopeo")
	t.Parallel()
	forEachTransport(t, testSkopeo)
}

func testSkopeo(t *testing.T, s *server) {
	sk := newCLI(t, "skopeo")
	policy := writeFile(t, t.TempDir(), "policy.json", `{"default":[{"type":"insecureAcceptAnything"}]}`)
	authfile := filepath.Join(t.TempDir(), "auth.json")
	// tlsFlags returns the flags that make skopeo trust the server, for
	// one side of a copy ("src-", "dest-") or for a single-image command
	// ("").
	tlsFlags := func(side string) []string {
		if s.TLS {
			return []string{"--" + side + "cert-dir", s.CertDir}
		}
		return []string{"--" + side + "tls-verify=false"}
	}
	skopeo := func(args ...string) string {
		t.Helper()
		return sk.run(append([]string{"--policy", policy}, args...)...)
	}
	cmd := func(sub string, sides []string, args ...string) []string {
		out := []string{sub}
		for _, side := range sides {
			out = append(out, tlsFlags(side)...)
		}
		return append(out, args...)
	}
	creds := s.User + ":" + s.Password
	docker := func(r string) string { return "docker://" + s.Host + "/" + r }

	amd, arm := testImage(t, "amd64"), testImage(t, "arm64")
	idx := testIndex(t, amd, arm)
	lay := writeLayout(t, map[string]v1.Image{"amd64": amd}, map[string]v1.ImageIndex{"multi": idx})

	// Login writes the credentials that the push then uses.
	sk.runStdin(s.Password+"\n", cmd("login", []string{""}, "--authfile", authfile, "-u", s.User, "--password-stdin", s.Host)...)
	if b, err := os.ReadFile(authfile); err != nil || len(b) == 0 {
		t.Fatalf("skopeo login wrote no credentials: %v", err)
	}

	// Push one image.
	skopeo(cmd("copy", []string{"dest-"}, "--authfile", authfile, "oci:"+lay+":amd64", docker("skopeo/app:v1"))...)
	if got, want := s.digest(t, "skopeo/app:v1"), digestOf(t, amd); got != want {
		t.Fatalf("pushed image digest %s, want %s", got, want)
	}

	// Push a multi-platform index. skopeo re-serializes an index it
	// copies with --all (its JSON field order differs from the layout's),
	// so the index is checked by its children and their platforms.
	skopeo(cmd("copy", []string{"dest-"}, "--all", "--dest-creds", creds, "oci:"+lay+":multi", docker("skopeo/multi:v1"))...)
	s.checkIndex(t, "skopeo/multi:v1", amd, arm)
	pushed := s.digest(t, "skopeo/multi:v1")

	// Copy between repositories (the blobs are mounted, not re-sent).
	skopeo(cmd("copy", []string{"src-", "dest-"}, "--all", "--src-creds", creds, "--dest-creds", creds, docker("skopeo/multi:v1"), docker("skopeo-copy/multi:v2"))...)
	if got := s.digest(t, "skopeo-copy/multi:v2"); got != pushed {
		t.Fatalf("copied index digest %s, want %s", got, pushed)
	}
	s.checkIndex(t, "skopeo-copy/multi:v2", amd, arm)

	// Pull into an OCI layout.
	out := filepath.Join(t.TempDir(), "pulled")
	skopeo(cmd("copy", []string{"src-"}, "--src-creds", creds, docker("skopeo/app:v1"), "oci:"+out+":v1")...)
	if got, want := layoutDigest(t, out, "v1"), digestOf(t, amd); got != want {
		t.Fatalf("pulled image digest %s, want %s", got, want)
	}

	// Inspect the raw manifest: its bytes hash to the digest.
	raw := skopeo(cmd("inspect", []string{""}, "--raw", "--creds", creds, docker("skopeo/app:v1"))...)
	if got, want := sha256Hex([]byte(raw)), digestOf(t, amd).String(); got != want {
		t.Fatalf("inspect --raw: manifest hashes to %s, want %s", got, want)
	}

	// Tag list.
	skopeo(cmd("copy", []string{"src-", "dest-"}, "--src-creds", creds, "--dest-creds", creds, docker("skopeo/app:v1"), docker("skopeo/app:v1.0"))...)
	var tl struct {
		Repository string
		Tags       []string
	}
	if err := json.Unmarshal([]byte(skopeo(cmd("list-tags", []string{""}, "--creds", creds, docker("skopeo/app"))...)), &tl); err != nil {
		t.Fatal(err)
	}
	slices.Sort(tl.Tags)
	if !slices.Equal(tl.Tags, []string{"v1", "v1.0"}) {
		t.Fatalf("list-tags: %v", tl.Tags)
	}

	// Delete by digest: the manifest and the tags pointing at it go.
	d := digestOf(t, amd).String()
	skopeo(cmd("delete", []string{""}, "--creds", creds, docker("skopeo/app@"+d))...)
	if s.exists(t, "skopeo/app@"+d) || s.exists(t, "skopeo/app:v1") {
		t.Fatal("manifest still there after skopeo delete")
	}
	if tags := s.tags(t, "skopeo/app"); len(tags) != 0 {
		t.Fatalf("tags after delete: %v", tags)
	}
	// The copy in the other repository is untouched.
	if !s.exists(t, "skopeo-copy/multi@"+d) {
		t.Fatal("deleting from one repository removed the manifest from another")
	}

	// Without credentials nothing is readable.
	if _, err := sk.try("--policy", policy, "inspect", "--raw", tlsFlags("")[0], tlsFlagValue(tlsFlags("")), docker("skopeo-copy/multi:v2")); err == nil {
		t.Fatal("skopeo inspect without credentials succeeded")
	}
}

// tlsFlagValue returns the value of a two-word flag, or the flag again for
// a one-word flag (harmless when repeated).
func tlsFlagValue(f []string) string {
	if len(f) == 2 {
		return f[1]
	}
	return f[0]
}
