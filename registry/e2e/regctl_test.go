package e2e_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestRegctl drives regctl (regclient): registry set and login, push from
// an OCI layout, an index from a layout and one made with index create,
// pull into an OCI layout, manifest and blob reads, artifacts with a
// subject and their listing (with an artifactType filter), a copy between
// repositories with referrers, tag and repository lists, tag and manifest
// deletes.
func TestRegctl(t *testing.T) {
	lookTool(t, "regctl")
	t.Parallel()
	forEachTransport(t, testRegctl)
}

func testRegctl(t *testing.T, s *server) {
	c := newCLI(t, "regctl")
	regctl := func(args ...string) string {
		t.Helper()
		return c.run(args...)
	}
	ref := func(r string) string { return s.Host + "/" + r }

	if s.TLS {
		ca, err := os.ReadFile(s.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		regctl("registry", "set", "--skip-check", s.Host, "--tls", "enabled", "--cacert", string(ca))
	} else {
		regctl("registry", "set", "--skip-check", s.Host, "--tls", "disabled")
	}
	c.runStdin(s.Password, "registry", "login", s.Host, "-u", s.User, "--pass-stdin")

	amd, arm := testImage(t, "amd64"), testImage(t, "arm64")
	amdD := digestOf(t, amd)
	idx := testIndex(t, amd, arm)
	lay := writeLayout(t, map[string]v1.Image{"amd64": amd, "arm64": arm}, map[string]v1.ImageIndex{"multi": idx})

	// Push images and an index from the layout: byte for byte.
	for _, tag := range []string{"amd64", "arm64"} {
		regctl("image", "copy", "ocidir://"+lay+":"+tag, ref("regctl/app:"+tag))
	}
	if got := s.digest(t, "regctl/app:amd64"); got != amdD {
		t.Fatalf("pushed digest %s, want %s", got, amdD)
	}
	regctl("image", "copy", "ocidir://"+lay+":multi", ref("regctl/multi:v1"))
	if got, want := s.digest(t, "regctl/multi:v1"), digestOf(t, idx); got != want {
		t.Fatalf("pushed index digest %s, want %s", got, want)
	}
	s.checkIndex(t, "regctl/multi:v1", amd, arm)

	// An index made on the registry from the two images.
	regctl("index", "create", ref("regctl/app:multi"), "--ref", ref("regctl/app:amd64"), "--ref", ref("regctl/app:arm64"))
	s.checkIndex(t, "regctl/app:multi", amd, arm)

	// Pull into an OCI layout; read the manifest and a layer.
	out := t.TempDir()
	regctl("image", "copy", ref("regctl/app:amd64"), "ocidir://"+out+":v1")
	if got := layoutDigest(t, out, "v1"); got != amdD {
		t.Fatalf("pulled digest %s, want %s", got, amdD)
	}
	if got := sha256Hex([]byte(regctl("manifest", "get", "--format", "raw-body", ref("regctl/app:amd64")))); got != amdD.String() {
		t.Fatalf("manifest get hashes to %s, want %s", got, amdD)
	}
	layers, _ := amd.Layers()
	ld, _ := layers[0].Digest()
	if got := sha256Hex([]byte(regctl("blob", "get", ref("regctl/app"), ld.String()))); got != ld.String() {
		t.Fatalf("blob get hashes to %s, want %s", got, ld)
	}

	// Two artifacts referring to the amd64 image.
	writeFile(t, c.dir, "sbom.json", `{"spdxVersion":"SPDX-2.3"}`)
	writeFile(t, c.dir, "sig.txt", "signature")
	regctl("artifact", "put", "--subject", ref("regctl/app:amd64"), "--artifact-type", "application/spdx+json", "-f", "sbom.json", "-m", "application/spdx+json")
	regctl("artifact", "put", "--subject", ref("regctl/app:amd64"), "--artifact-type", "application/vnd.berth.signature", "-f", "sig.txt", "-m", "text/plain")
	list := artifactList(t, regctl("artifact", "list", "--format", "{{json .}}", ref("regctl/app:amd64")))
	if len(list) != 2 {
		t.Fatalf("artifact list: %+v, want 2 referrers", list)
	}
	sbom := artifactList(t, regctl("artifact", "list", "--format", "{{json .}}", "--filter-artifact-type", "application/spdx+json", ref("regctl/app:amd64")))
	if len(sbom) != 1 || sbom[0].ArtifactType != "application/spdx+json" {
		t.Fatalf("artifact list --filter-artifact-type: %+v", sbom)
	}
	if got := s.referrers(t, "regctl/app", amdD); len(got) != 2 {
		t.Fatalf("referrers API: %+v, want 2", got)
	}

	// Copy to another repository, with the referrers.
	regctl("image", "copy", "--referrers", ref("regctl/app:amd64"), ref("regctl-copy/app:amd64"))
	if got := s.digest(t, "regctl-copy/app:amd64"); got != amdD {
		t.Fatalf("copied digest %s, want %s", got, amdD)
	}
	if got := s.referrers(t, "regctl-copy/app", amdD); len(got) != 2 {
		t.Fatalf("the copy has %d referrers, want 2", len(got))
	}

	// Tag and repository lists.
	regctl("image", "copy", ref("regctl/app:amd64"), ref("regctl/app:extra"))
	tags := strings.Fields(regctl("tag", "ls", ref("regctl/app")))
	slices.Sort(tags)
	if want := []string{"amd64", "arm64", "extra", "multi"}; !slices.Equal(tags, want) {
		t.Fatalf("tag ls: %v, want %v", tags, want)
	}
	repos := strings.Fields(regctl("repo", "ls", s.Host))
	if want := []string{"regctl-copy/app", "regctl/app", "regctl/multi"}; !slices.Equal(repos, want) {
		t.Fatalf("repo ls: %v, want %v", repos, want)
	}

	// Delete a tag (the manifest stays), then the SBOM and the image.
	regctl("tag", "rm", ref("regctl/app:extra"))
	if s.exists(t, "regctl/app:extra") || !s.exists(t, "regctl/app@"+amdD.String()) {
		t.Fatal("tag rm: the tag should go and the manifest stay")
	}
	regctl("manifest", "rm", ref("regctl/app@"+sbom[0].Digest))
	if got := s.referrers(t, "regctl/app", amdD); len(got) != 1 || got[0].Digest.String() == sbom[0].Digest {
		t.Fatalf("referrers after deleting the SBOM: %+v", got)
	}
	regctl("manifest", "rm", ref("regctl/app@"+amdD.String()))
	if s.exists(t, "regctl/app@"+amdD.String()) || s.exists(t, "regctl/app:amd64") {
		t.Fatal("image still there after manifest rm")
	}
	if !s.exists(t, "regctl-copy/app@"+amdD.String()) {
		t.Fatal("deleting from one repository removed the image from another")
	}

	// Logout: then access is refused.
	regctl("registry", "logout", s.Host)
	if _, err := c.try("tag", "ls", ref("regctl/app")); err == nil {
		t.Fatal("tag ls without credentials succeeded")
	}
}

type artifactDesc struct {
	Digest       string `json:"digest"`
	ArtifactType string `json:"artifactType"`
}

// artifactList reads regctl artifact list --format '{{json .}}'.
func artifactList(t *testing.T, out string) []artifactDesc {
	t.Helper()
	var v struct {
		Descriptors []artifactDesc `json:"descriptors"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("regctl artifact list output: %v\n%s", err, out)
	}
	return v.Descriptors
}
