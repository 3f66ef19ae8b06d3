package manage_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth/signedurl"
)

// TestSignedURLs drives the signed-URL route (package auth/signedurl),
// mounted as registryd mounts it, through the document, and uses the URLs
// it mints on /v2/ without credentials.
func TestSignedURLs(t *testing.T) {
	backends(t, testSignedURLs)
}

func testSignedURLs(t *testing.T, metaURL string) {
	s := newServer(t, metaURL)
	s.createToken("reader", "repository:team/*:pull")
	s.createToken("pushonly", "repository:team/*:push")
	s.createToken("other", "repository:other/*:pull")
	img := s.pushImage("team/app:v1", "linux", "amd64")
	pub := s.pushImage("team/pub:v1", "", "")
	s.do(step{name: "a public repository", method: "PATCH", path: repos + "/team/pub", user: "admin", body: `{"visibility":"public"}`, wantStatus: 200})
	d := digestOf(t, img)
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layer := digestOf(t, layers[0])
	other := s.pushImage("other/app:v1", "", "")
	otherLayers, _ := other.Layers()
	const mint = repos + "/team/app/signed-urls"

	byTag := s.do(step{name: "by tag", method: "POST", path: mint, user: "reader", body: `{"reference":"v1","expiresIn":"5m"}`, wantStatus: 201,
		wantBody: []string{`"kind":"manifests"`, `"digest":"` + d + `"`}, wantHeader: map[string]string{"Cache-Control": "no-store"}})
	created := func(r result) signedurl.CreatedURL {
		t.Helper()
		var c signedurl.CreatedURL
		if err := json.Unmarshal(r.body, &c); err != nil {
			t.Fatalf("%s: %v", r.body, err)
		}
		return c
	}
	m := created(byTag)
	if !strings.HasPrefix(m.URL, s.srv.URL+"/v2/team/app/manifests/"+d+"?") || m.URL != s.srv.URL+m.Path {
		t.Errorf("url %q, path %q", m.URL, m.Path)
	}
	if left := time.Until(m.ExpiresAt); left < 4*time.Minute || left > 5*time.Minute+time.Second {
		t.Errorf("expiresAt %v: %v from now, want 5m", m.ExpiresAt, left)
	}
	bl := created(s.do(step{name: "a blob", method: "POST", path: mint, user: "reader", body: `{"digest":"` + layer + `"}`, wantStatus: 201,
		wantBody: []string{`"kind":"blobs"`, `"digest":"` + layer + `"`}}))
	for _, st := range []step{
		{name: "by digest", method: "POST", path: mint, user: "reader", body: `{"reference":"` + d + `"}`, wantStatus: 201, wantBody: []string{`"kind":"manifests"`}},
		{name: "as admin", method: "POST", path: mint, user: "admin", body: `{"reference":"v1","expiresIn":"1h"}`, wantStatus: 201},
		{name: "percent-encoded name", method: "POST", path: repos + "/team%2Fapp/signed-urls", user: "reader", body: `{"reference":"v1"}`, wantStatus: 201,
			wantBody: []string{`/v2/team/app/manifests/` + d}},
		{name: "JSON with a charset", method: "POST", path: mint, user: "reader", body: `{"reference":"v1"}`, contentType: "application/json; charset=utf-8", wantStatus: 201},

		{name: "not JSON", method: "POST", path: mint, user: "reader", body: `reference=v1`, wantStatus: 400, invalid: true, wantBody: []string{`"BODY_INVALID"`}},
		{name: "no body", method: "POST", path: mint, user: "reader", wantStatus: 400, invalid: true, wantBody: []string{`"BODY_INVALID"`}},
		{name: "neither reference nor digest", method: "POST", path: mint, user: "reader", body: `{"expiresIn":"5m"}`, wantStatus: 400, invalid: true, wantBody: []string{`"BODY_INVALID"`}},
		{name: "both reference and digest", method: "POST", path: mint, user: "reader", body: `{"reference":"v1","digest":"` + layer + `"}`, wantStatus: 400, invalid: true, wantBody: []string{`"BODY_INVALID"`}},
		{name: "unknown field", method: "POST", path: mint, user: "reader", body: `{"reference":"v1","ttl":"5m"}`, wantStatus: 400, invalid: true, wantBody: []string{`"BODY_INVALID"`}},
		{name: "wrong type", method: "POST", path: mint, user: "reader", body: `{"reference":1}`, wantStatus: 400, invalid: true, wantBody: []string{`"BODY_INVALID"`}},
		{name: "two objects", method: "POST", path: mint, user: "reader", body: `{"reference":"v1"}{}`, wantStatus: 400, wantBody: []string{`"BODY_INVALID"`}},
		{name: "bad tag", method: "POST", path: mint, user: "reader", body: `{"reference":"-v1"}`, wantStatus: 400, wantBody: []string{`"TAG_INVALID"`}},
		{name: "bad manifest digest", method: "POST", path: mint, user: "reader", body: `{"reference":"sha256:xyz"}`, wantStatus: 400, wantBody: []string{`"DIGEST_INVALID"`}},
		{name: "bad blob digest", method: "POST", path: mint, user: "reader", body: `{"digest":"sha256:00"}`, wantStatus: 400, wantBody: []string{`"DIGEST_INVALID"`}},
		{name: "not a duration", method: "POST", path: mint, user: "reader", body: `{"reference":"v1","expiresIn":"soon"}`, wantStatus: 400, invalid: true, wantBody: []string{`"EXPIRY_INVALID"`}},
		{name: "under a second", method: "POST", path: mint, user: "reader", body: `{"reference":"v1","expiresIn":"500ms"}`, wantStatus: 400, wantBody: []string{`"EXPIRY_INVALID"`}},
		{name: "beyond the maximum", method: "POST", path: mint, user: "reader", body: `{"reference":"v1","expiresIn":"2h"}`, wantStatus: 400, wantBody: []string{`"EXPIRY_INVALID"`}},
		{name: "bad name", method: "POST", path: repos + "/Team/App/signed-urls", user: "admin", body: `{"reference":"v1"}`, wantStatus: 400, invalid: true, wantBody: []string{`"NAME_INVALID"`}},

		{name: "anonymous", method: "POST", path: mint, body: `{"reference":"v1"}`, wantStatus: 401, wantBody: []string{`"UNAUTHORIZED"`},
			wantHeader: map[string]string{"WWW-Authenticate": `Basic realm="berth"`}},
		{name: "anonymous, public repository", method: "POST", path: repos + "/team/pub/signed-urls", body: `{"reference":"v1"}`, wantStatus: 401,
			wantHeader: map[string]string{"WWW-Authenticate": "*"}},
		{name: "wrong password", method: "POST", path: mint, user: "bad", body: `{"reference":"v1"}`, wantStatus: 401, wantHeader: map[string]string{"WWW-Authenticate": "*"}},
		{name: "no pull", method: "POST", path: mint, user: "pushonly", body: `{"reference":"v1"}`, wantStatus: 403, wantBody: []string{`"DENIED"`}},
		{name: "outside the scope", method: "POST", path: mint, user: "other", body: `{"reference":"v1"}`, wantStatus: 403, wantBody: []string{`"DENIED"`}},
		{name: "outside the scope, bad body alike", method: "POST", path: mint, user: "other", body: `{}`, wantStatus: 403, invalid: true},

		{name: "unknown tag", method: "POST", path: mint, user: "reader", body: `{"reference":"v9"}`, wantStatus: 404, wantBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "unknown manifest", method: "POST", path: mint, user: "reader", body: `{"reference":"sha256:` + strings.Repeat("1", 64) + `"}`, wantStatus: 404, wantBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "unknown blob", method: "POST", path: mint, user: "reader", body: `{"digest":"sha256:` + strings.Repeat("1", 64) + `"}`, wantStatus: 404, wantBody: []string{`"BLOB_UNKNOWN"`}},
		{name: "another repository's blob", method: "POST", path: mint, user: "admin", body: `{"digest":"` + digestOf(t, otherLayers[0]) + `"}`, wantStatus: 404, wantBody: []string{`"BLOB_UNKNOWN"`}},
		{name: "a tag of an unknown repository", method: "POST", path: repos + "/team/none/signed-urls", user: "admin", body: `{"reference":"v1"}`, wantStatus: 404},

		// Repositories whose names end in the route's word are named
		// percent-encoded (or, alone, as themselves) on their own resource.
		{name: "a repository named signed-urls", method: "PUT", path: repos + "/signed-urls", user: "admin", body: `{}`, wantStatus: 201},
		{name: "its settings", method: "GET", path: repos + "/signed-urls", user: "admin", wantStatus: 200, wantBody: []string{`"name":"signed-urls"`}},
		{name: "a repository named team/signed-urls", method: "PUT", path: repos + "/team%2Fsigned-urls", user: "admin", body: `{}`, wantStatus: 201,
			wantHeader: map[string]string{"Location": repos + "/team%2Fsigned-urls"}},
		{name: "URLs of its content", method: "POST", path: repos + "/team/signed-urls/signed-urls", user: "reader", body: `{"reference":"v1"}`, wantStatus: 404, wantBody: []string{`"MANIFEST_UNKNOWN"`}},

		{name: "methods", method: "GET", path: mint, user: "reader", wantStatus: 405},
		{name: "methods, DELETE", method: "DELETE", path: mint, user: "admin", wantStatus: 405},
		{name: "too large", method: "POST", path: mint, user: "reader", body: `{"reference":"` + strings.Repeat("a", 8<<10) + `"}`, wantStatus: 413, wantBody: []string{`"SIZE_INVALID"`}},
		{name: "not JSON content", method: "POST", path: mint, user: "reader", body: `{"reference":"v1"}`, contentType: "text/plain", wantStatus: 415, invalid: true, wantBody: []string{`"BODY_INVALID"`}},
	} {
		s.do(st)
	}

	// The URLs read their content without other credentials, by GET and
	// HEAD, and nothing else.
	get := func(method, target string, user string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(s.creds[user][0], s.creds[user][1])
		}
		res, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	sum := func(b []byte) string {
		h := sha256.Sum256(b)
		return "sha256:" + hex.EncodeToString(h[:])
	}
	if res, b := get("GET", s.srv.URL+"/v2/team/app/manifests/"+d, ""); res.StatusCode != 401 {
		t.Fatalf("the manifest without credentials: %s %s", res.Status, b)
	}
	if res, b := get("GET", m.URL, ""); res.StatusCode != 200 || string(b) != string(raw) || res.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("GET the manifest's URL: %s, %d bytes (%s)", res.Status, len(b), sum(b))
	}
	if res, b := get("HEAD", m.URL, ""); res.StatusCode != 200 || len(b) != 0 || res.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("HEAD the manifest's URL: %s", res.Status)
	}
	rl, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(rl)
	rl.Close()
	if res, b := get("GET", bl.URL, ""); res.StatusCode != 200 || sum(b) != layer || len(b) != len(want) {
		t.Errorf("GET the blob's URL: %s, %s", res.Status, sum(b))
	}

	// Moving the tag does not change what the URL reads.
	s.pushImage("team/app:v1", "", "")
	if res, b := get("GET", m.URL, ""); res.StatusCode != 200 || sum(b) != d {
		t.Errorf("after the tag moved: %s, %s", res.Status, sum(b))
	}

	// Tampered URLs, other paths and methods: 401 with the distribution
	// specification's error body.
	u, err := url.Parse(bl.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	sig := q.Get(signedurl.ParamSignature)
	flip := "A"
	if sig[0] == 'A' {
		flip = "B"
	}
	with := func(k, v string) string {
		q := u.Query()
		q.Set(k, v)
		return s.srv.URL + u.Path + "?" + q.Encode()
	}
	for what, target := range map[string]string{
		"tampered signature":        with(signedurl.ParamSignature, flip+sig[1:]),
		"truncated signature":       with(signedurl.ParamSignature, sig[:len(sig)-2]),
		"later expiry":              with(signedurl.ParamExpires, "9999999999"),
		"unknown key":               with(signedurl.ParamKeyID, "other"),
		"extra parameter":           bl.URL + "&n=1",
		"other blob":                s.srv.URL + "/v2/team/app/blobs/" + digestOf(t, layers[1]) + "?" + u.RawQuery,
		"same blob, other repo":     s.srv.URL + "/v2/team/pub/blobs/" + layer + "?" + u.RawQuery,
		"the tag list":              s.srv.URL + "/v2/team/app/tags/list?" + u.RawQuery,
		"the manifest by its tag":   s.srv.URL + "/v2/team/app/manifests/v1?" + mustRawQuery(t, m.URL),
		"the management API":        s.srv.URL + repos + "/team/app?" + u.RawQuery,
		"the public repository too": s.srv.URL + "/v2/team/pub/manifests/" + digestOf(t, pub) + "?" + u.RawQuery,
	} {
		res, b := get("GET", target, "")
		var eb struct{ Errors []struct{ Code string } }
		if res.StatusCode != 401 || json.Unmarshal(b, &eb) != nil || len(eb.Errors) != 1 || eb.Errors[0].Code != "UNAUTHORIZED" {
			t.Errorf("%s: %s %s, want 401 UNAUTHORIZED", what, res.Status, b)
		}
	}
	for _, method := range []string{"DELETE", "PUT", "POST"} {
		if res, b := get(method, bl.URL, "admin"); res.StatusCode != 401 {
			t.Errorf("%s with the blob's URL: %s %s", method, res.Status, b)
		}
	}
	if res, _ := get("GET", bl.URL, ""); res.StatusCode != 200 {
		t.Errorf("the blob after the refused requests: %s", res.Status)
	}
	// A signed URL's identity mints nothing.
	s.do(step{name: "minting with a signed URL", method: "POST", path: mint + "?" + u.RawQuery, body: `{"reference":"v1"}`, wantStatus: 401, invalid: true})
}

// mustRawQuery returns the query of a URL.
func mustRawQuery(t *testing.T, s string) string {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u.RawQuery
}
