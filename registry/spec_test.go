package registry_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/registry/registrytest"
)

// Requests the OCI conformance suite makes, checked here at the HTTP level
// so that a regression shows without the suite.

type specClient struct {
	t    *testing.T
	srv  *registrytest.Server
	user string
	pass string
}

func (c specClient) do(method, path string, body []byte, hdr ...string) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// pushBlob uploads b monolithically to repo and returns its digest.
func (c specClient) pushBlob(repo string, b []byte) string {
	c.t.Helper()
	s := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(s[:])
	if resp := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d, b); resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("push blob: %s", resp.Status)
	}
	return d
}

func TestManifestTagParameters(t *testing.T) {
	srv := registrytest.NewServer(t, nil)
	c := specClient{t: t, srv: srv, user: registrytest.AdminUser, pass: registrytest.AdminPassword}
	cfg := c.pushBlob("team/app", []byte("{}"))
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfg + `","size":2},"layers":[]}`)
	s := sha256.Sum256(m)
	d := "sha256:" + hex.EncodeToString(s[:])
	resp := c.do(http.MethodPut, "/v2/team/app/manifests/"+d+"?tag=v1&tag=latest", m, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT with tag parameters: %s", resp.Status)
	}
	if got := resp.Header.Values("OCI-Tag"); !slices.Equal(got, []string{"v1", "latest"}) {
		t.Fatalf("OCI-Tag = %v", got)
	}
	for _, tag := range []string{"v1", "latest"} {
		if resp := c.do(http.MethodHead, "/v2/team/app/manifests/"+tag, nil); resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != d {
			t.Fatalf("HEAD %s: %s %s", tag, resp.Status, resp.Header.Get("Docker-Content-Digest"))
		}
	}
	// An invalid tag rejects the whole push.
	resp = c.do(http.MethodPut, "/v2/team/app/manifests/"+d+"?tag=ok&tag=-bad", m, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT with an invalid tag parameter: %s", resp.Status)
	}
	if resp := c.do(http.MethodHead, "/v2/team/app/manifests/ok", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD ok after a rejected push: %s", resp.Status)
	}
}

func TestBlobInvalidRange(t *testing.T) {
	srv := registrytest.NewServer(t, nil)
	c := specClient{t: t, srv: srv, user: registrytest.AdminUser, pass: registrytest.AdminPassword}
	d := c.pushBlob("team/app", bytes.Repeat([]byte("x"), 2048))
	for rg, want := range map[string]int{
		"bytes=500-1499":   http.StatusPartialContent,
		"bytes=500-0":      http.StatusRequestedRangeNotSatisfiable,
		"bytes=5000-10000": http.StatusRequestedRangeNotSatisfiable,
		"bytes=0-1,5-6":    http.StatusOK, // several ranges: ignored
	} {
		resp := c.do(http.MethodGet, "/v2/team/app/blobs/"+d, nil, "Range", rg)
		if resp.StatusCode != want {
			t.Errorf("Range %s: %s, want %d", rg, resp.Status, want)
		}
		if want == http.StatusRequestedRangeNotSatisfiable && resp.Header.Get("Content-Range") != "bytes */2048" {
			t.Errorf("Range %s: Content-Range %q", rg, resp.Header.Get("Content-Range"))
		}
	}
}

// A mount without "from" finds the blob only in repositories the caller
// may pull from.
func TestMountWithoutFrom(t *testing.T) {
	srv := registrytest.NewServer(t, &registrytest.Options{Registry: registry.Options{
		Authenticator: authtest.Users{Passwords: map[string]string{"admin": "a", "bob": "b"}, Admins: []string{"admin"}},
		Authorizer: &authtest.Static{Grants: map[string][]auth.Scope{
			"bob": {{Type: auth.TypeRepository, Name: "bob/*", Actions: []string{auth.Pull, auth.Push}}},
		}},
	}})
	admin := specClient{t: t, srv: srv, user: "admin", pass: "a"}
	bob := specClient{t: t, srv: srv, user: "bob", pass: "b"}
	secret := admin.pushBlob("team/private", []byte("secret layer"))
	mine := bob.pushBlob("bob/one", []byte("bob's layer"))

	resp := bob.do(http.MethodPost, "/v2/bob/two/blobs/uploads/?mount="+mine, nil)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != mine {
		t.Fatalf("bob mounts his own blob: %s", resp.Status)
	}
	for _, q := range []string{"?mount=" + secret, "?mount=" + secret + "&from=team/private"} {
		resp := bob.do(http.MethodPost, "/v2/bob/two/blobs/uploads/"+q, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("bob mounts a blob he cannot pull (%s): %s, want 202 (a regular upload)", q, resp.Status)
		}
	}
	if resp := bob.do(http.MethodHead, "/v2/bob/two/blobs/"+secret, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD of the unmounted blob: %s", resp.Status)
	}
	if resp := admin.do(http.MethodPost, "/v2/team/copy/blobs/uploads/?mount="+secret, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("admin mount without from: %s", resp.Status)
	}
}

// Clients such as oras authenticate only when challenged: an anonymous
// catalog request is challenged.
func TestCatalogChallengesAnonymous(t *testing.T) {
	srv := registrytest.NewServer(t, nil)
	admin := specClient{t: t, srv: srv, user: registrytest.AdminUser, pass: registrytest.AdminPassword}
	admin.pushBlob("team/app", []byte("x"))
	resp := specClient{t: t, srv: srv}.do(http.MethodGet, "/v2/_catalog", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("anonymous catalog: %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	resp = admin.do(http.MethodGet, "/v2/_catalog", nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"team/app"`) {
		t.Fatalf("catalog: %s %s", resp.Status, b)
	}
}

// Bad input of every kind gets a spec error body with the right code and
// never a server error.
func TestBadInputErrors(t *testing.T) {
	srv := registrytest.NewServer(t, nil)
	c := specClient{t: t, srv: srv, user: registrytest.AdminUser, pass: registrytest.AdminPassword}
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	cases := []struct {
		method, path string
		body         []byte
		hdr          []string
		status       int
		code         string
	}{
		{"PUT", "/v2/team/app/manifests/-bad", manifest, []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 400, "MANIFEST_INVALID"},
		{"PUT", "/v2/team/app/manifests/v1", []byte("{"), []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 400, "MANIFEST_INVALID"},
		{"PUT", "/v2/team/app/manifests/v1", manifest, []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"PUT", "/v2/team/app/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000", manifest, []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 400, "DIGEST_INVALID"},
		{"GET", "/v2/Team/app/manifests/v1", nil, nil, 400, "NAME_INVALID"},
		{"GET", "/v2/team/app/manifests/v1", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/team/app/blobs/sha256:abc", nil, nil, 400, "DIGEST_INVALID"},
		{"GET", "/v2/team/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil, nil, 400, "DIGEST_INVALID"},
		{"GET", "/v2/team/app/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", nil, nil, 404, "BLOB_UNKNOWN"},
		{"POST", "/v2/team/app/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", []byte("{ }"), nil, 400, "DIGEST_INVALID"},
		{"PATCH", "/v2/team/app/blobs/uploads/nonexistent", []byte("x"), nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"GET", "/v2/team/app/tags/list?n=-1", nil, nil, 400, "UNSUPPORTED"},
	}
	for _, tc := range cases {
		resp := c.do(tc.method, tc.path, tc.body, tc.hdr...)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || !strings.Contains(string(b), `"code":"`+tc.code+`"`) {
			t.Errorf("%s %s: %s %s, want %d %s", tc.method, tc.path, resp.Status, b, tc.status, tc.code)
		}
	}
}
