package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestPullThroughCrane runs two registryd processes, one a pull-through
// cache of the other (--upstream, with the upstream's admin credentials
// from --upstream-credentials; the upstream asks for Bearer tokens from
// its token service), and pulls through the cache with crane: by tag, by
// digest, a multi-platform index copied whole, layers validated. It
// checks that pushes into the cache are refused and that cached content
// is still served once the upstream is stopped.
func TestPullThroughCrane(t *testing.T) {
	lookTool(t, "crane")
	t.Parallel()
	up := startRegistryd(t, true)
	credFile := filepath.Join(t.TempDir(), "upstreams.json")
	b, _ := json.Marshal(map[string]map[string]string{"hub/": {"username": up.User, "password": up.Password}})
	if err := os.WriteFile(credFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cache := startRegistrydWith(t, true,
		[]string{"--upstream", "hub/=" + up.URL + "/lib/,ttl=1s", "--upstream-credentials", credFile}, nil)

	c := newCLI(t, "crane")
	crane := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(c.run(append(args, "--insecure")...))
	}
	c.runStdin(up.Password, "auth", "login", up.Host, "-u", up.User, "--password-stdin", "--insecure")
	c.runStdin(cache.Password, "auth", "login", cache.Host, "-u", cache.User, "--password-stdin", "--insecure")

	// Upstream content: two images and an index of them.
	amd, arm := testImage(t, "amd64"), testImage(t, "arm64")
	crane("push", writeLayout(t, map[string]v1.Image{"amd64": amd}, nil), up.Host+"/lib/app:amd64")
	crane("push", writeLayout(t, map[string]v1.Image{"arm64": arm}, nil), up.Host+"/lib/app:arm64")
	crane("index", "append", "-m", up.Host+"/lib/app:amd64", "-m", up.Host+"/lib/app:arm64", "-t", up.Host+"/lib/app:multi")
	multi := up.digest(t, "lib/app:multi")

	// By tag, every layer read and verified.
	crane("validate", "--remote", cache.Host+"/hub/app:amd64")
	if got := crane("digest", cache.Host+"/hub/app:amd64"); got != digestOf(t, amd).String() {
		t.Fatalf("digest through the cache %s, want %s", got, digestOf(t, amd))
	}
	// Pull into a layout.
	dir := filepath.Join(t.TempDir(), "pulled")
	crane("pull", "--format", "oci", cache.Host+"/hub/app:amd64", dir)
	if got := layoutDigest(t, dir, ""); got != digestOf(t, amd) {
		t.Fatalf("pulled %s, want %s", got, digestOf(t, amd))
	}
	// The index by digest, copied whole (children and blobs) into an
	// ordinary repository of the cache registry.
	crane("copy", cache.Host+"/hub/app@"+multi.String(), cache.Host+"/team/copy:multi")
	cache.checkIndex(t, "team/copy:multi", amd, arm)
	cache.checkIndex(t, "hub/app@"+multi.String(), amd, arm)

	// Cached repositories are read-only.
	if _, err := c.try("push", writeLayout(t, map[string]v1.Image{"amd64": amd}, nil), cache.Host+"/hub/app:mine", "--insecure"); err == nil {
		t.Fatal("crane pushed into a cached repository")
	} else if !strings.Contains(err.Error(), "UNSUPPORTED") && !strings.Contains(err.Error(), "405") {
		t.Fatalf("push into a cached repository: %v", err)
	}

	// The upstream goes away: what is cached is still served, stale tags
	// included; what is not is an error.
	up.Stop()
	time.Sleep(1100 * time.Millisecond) // past the tag TTL
	crane("validate", "--remote", cache.Host+"/hub/app:amd64")
	if got := crane("digest", cache.Host+"/hub/app@"+multi.String()); got != multi.String() {
		t.Fatal(got)
	}
	if out, err := c.try("digest", cache.Host+"/hub/app:arm64", "--insecure"); err == nil {
		t.Fatalf("a tag never cached was served with the upstream down: %s", out)
	}
}
