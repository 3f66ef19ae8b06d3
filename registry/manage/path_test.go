package manage

import (
	"fmt"
	"testing"
)

func TestParsePath(t *testing.T) {
	const d = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
	for _, c := range []struct {
		path string
		want string // kind name ref, or "-" when not served
	}{
		{"/api/v1/openapi.yaml", "openapi  "},
		{"/api/v1/repositories", "repositories  "},
		{"/api/v1/repositories/", "-"},
		{"/api/v1/repositories/app", "repository app "},
		{"/api/v1/repositories/team/app", "repository team/app "},
		{"/api/v1/repositories/team%2Fapp", "repository team/app "},
		{"/api/v1/repositories/team/app/images", "images team/app "},
		{"/api/v1/repositories/team%2Fapp/images", "images team/app "},
		{"/api/v1/repositories/images", "repository images "},
		{"/api/v1/repositories/x%2Fimages", "repository x/images "},
		{"/api/v1/repositories/x/images/images", "images x/images "},
		{"/api/v1/repositories/team/app/images/" + d, "image team/app " + d},
		{"/api/v1/repositories/team/app/images/sha256%3Aab", "image team/app sha256:ab"},
		{"/api/v1/repositories/a/images/images/" + d, "image a/images " + d},
		{"/api/v1/repositories/team/app/images/latest", "repository team/app/images/latest "},
		{"/api/v1/repositories/team/app/tags/v1/history", "history team/app v1"},
		{"/api/v1/repositories/team/app/tags/v1/restore", "restore team/app v1"},
		{"/api/v1/repositories/tags/v1/history", "repository tags/v1/history "},
		{"/api/v1/repositories/team/app/tags/v1", "repository team/app/tags/v1 "},
		{"/api/v1/repositories/team/app/lifecycle-policy", "-"},
		{"/api/v1/repositories/team/app/lifecycle-policy/preview", "-"},
		{"/api/v1/repositories/x%2Flifecycle-policy", "repository x/lifecycle-policy "},
		{"/api/v1/repositories/team/app/images/" + d + "/vulnerabilities", "-"},
		{"/api/v1/repositories/team/app/images/" + d + "/scan", "-"},
		{"/api/v1/repositories/team/app/images/latest/scan", "repository team/app/images/latest/scan "},
		{"/api/v1/repositories/team/app/signed-urls", "-"},
		{"/api/v1/repositories/team%2Fapp/signed-urls", "-"},
		{"/api/v1/repositories/x%2Fsigned-urls", "repository x/signed-urls "},
		{"/api/v1/repositories/signed-urls", "repository signed-urls "},
		{"/api/v1/repositories/lifecycle-policy", "repository lifecycle-policy "},
		{"/api/v1/repositories/bad%zz/images", "repository bad%zz/images "},
		{"/api/v1/tokens", "-"},
		{"/v2/team/app/manifests/latest", "-"},
	} {
		rt, ok := parsePath(c.path)
		got := "-"
		if ok {
			got = fmt.Sprintf("%s %s %s", rt.kind, rt.name, rt.ref)
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.path, got, c.want)
		}
	}
}

func TestRepositoryPath(t *testing.T) {
	for name, want := range map[string]string{
		"team/app":                "/api/v1/repositories/team/app",
		"x/images":                "/api/v1/repositories/x%2Fimages",
		"a/tags/b/history":        "/api/v1/repositories/a%2Ftags%2Fb%2Fhistory",
		"x/lifecycle-policy":      "/api/v1/repositories/x%2Flifecycle-policy",
		"x/signed-urls":           "/api/v1/repositories/x%2Fsigned-urls",
		"signed-urls":             "/api/v1/repositories/signed-urls",
		"lifecycle-policy":        "/api/v1/repositories/lifecycle-policy",
		"images":                  "/api/v1/repositories/images",
		"team/app/images/v1/scan": "/api/v1/repositories/team/app/images/v1/scan",
	} {
		if got := repositoryPath(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
		if rt, ok := parsePath(repositoryPath(name)); !ok || rt.kind != routeRepository || rt.name != name {
			t.Errorf("%s: %s parses as %+v", name, repositoryPath(name), rt)
		}
	}
}

// FuzzParsePath checks that any path parses without panicking, and that a
// repository's canonical path names it again.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"team/app", "x%2Fimages", "a/images/images/sha256:ab", "t/tags/v1/history", "%zz", "a//b", "images", "signed-urls", "x%2Fsigned-urls", "lifecycle-policy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		rt, ok := parsePath(RepositoriesPath + "/" + rest)
		if !ok || rt.kind != routeRepository {
			return
		}
		back, ok := parsePath(repositoryPath(rt.name))
		if !ok || back.kind != routeRepository || back.name != rt.name {
			t.Errorf("%q: name %q, whose path %q parses as %+v", rest, rt.name, repositoryPath(rt.name), back)
		}
	})
}
