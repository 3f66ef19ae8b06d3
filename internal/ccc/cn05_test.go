package ccc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// denied reports whether a status refuses the request.
func denied(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// countObjects counts the files under dir.
func countObjects(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestCCC_Core_CN05_AR01_C05_TR01_UnauthorizedModifyBlocked(t *testing.T) {
	a := assess(t)
	t.Parallel()
	// A server of its own, so that its bucket can be compared exactly.
	s := mustStart(t, serverOptions{})
	reader := s.createToken(t, "reader", "1h", "repository:team-a/**:pull")
	noAccess := s.createToken(t, "no-access", "1h", "repository:nobody/**:pull")
	repo := "team-a/app"
	img := s.pushImage(t, s.Admin, repo, "v1", randomBytes(512))
	other := s.pushImage(t, s.Admin, "team-a/src", "v1", randomBytes(512))
	tagsBefore := s.do(t, s.Admin, http.MethodGet, "/v2/"+repo+"/tags/list", nil).Body
	objects := countObjects(t, filepath.Join(s.Data, "blobs"))
	evil := imageManifest([]byte("{}"))
	ct := []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}
	type try struct {
		method, path string
		body         []byte
		header       []string
	}
	tries := []try{
		{http.MethodPost, "/v2/" + repo + "/blobs/uploads/", nil, nil},
		{http.MethodPost, "/v2/" + repo + "/blobs/uploads/?digest=" + img.Layers[0].String(), randomBytes(16), []string{"Content-Type", "application/octet-stream"}},
		{http.MethodPut, "/v2/" + repo + "/manifests/evil", evil, ct},
		{http.MethodPut, "/v2/" + repo + "/manifests/v1", evil, ct},
		{http.MethodDelete, "/v2/" + repo + "/manifests/" + img.Digest.String(), nil, nil},
		{http.MethodDelete, "/v2/" + repo + "/manifests/v1", nil, nil},
		{http.MethodDelete, "/v2/" + repo + "/blobs/" + img.Layers[0].String(), nil, nil},
		{http.MethodPost, "/v2/" + repo + "/blobs/uploads/?mount=" + other.Layers[0].String() + "&from=team-a/src", nil, nil},
	}
	for _, who := range []identity{anonymous, noAccess, reader} {
		for _, tr := range tries {
			r := s.do(t, who, tr.method, tr.path, tr.body, tr.header...)
			switch {
			case !denied(r.Status):
				a.Errorf("%s %s as %s: %d %s, want 401 or 403", tr.method, tr.path, who.Name, r.Status, truncate(r.Body))
			case r.Status == http.StatusUnauthorized && !regexp.MustCompile(`^Bearer realm="[^"]+",service="[^"]+"(,error="[^"]+")?,scope="repository:team-a/app:[a-z,]*(push|delete)`).MatchString(r.Header.Get("WWW-Authenticate")):
				a.Errorf("%s %s as %s: 401 with challenge %q, want a Bearer challenge naming the push or delete scope", tr.method, tr.path, who.Name, r.Header.Get("WWW-Authenticate"))
			}
		}
		a.Evidence("as %s: upload start, monolithic upload, manifest PUT (new tag and overwrite), manifest DELETE by digest and by tag, blob DELETE and cross-repository mount were all refused with 401 (Bearer challenge naming the scope) or 403", who.Name)
	}
	if r := s.do(t, s.Admin, http.MethodHead, "/v2/"+repo+"/manifests/evil", nil); r.Status != http.StatusNotFound {
		a.Errorf("after the refused pushes, HEAD manifests/evil as admin: %d, want 404", r.Status)
	}
	if r := s.do(t, s.Admin, http.MethodHead, "/v2/"+repo+"/manifests/v1", nil); r.Header.Get("Docker-Content-Digest") != img.Digest.String() {
		a.Errorf("after the refused writes, v1 is %q, want %s", r.Header.Get("Docker-Content-Digest"), img.Digest)
	}
	if tags := s.do(t, s.Admin, http.MethodGet, "/v2/"+repo+"/tags/list", nil).Body; !bytes.Equal(tags, tagsBefore) {
		a.Errorf("tags changed: %s, were %s", tags, tagsBefore)
	}
	if r := s.do(t, s.Admin, http.MethodHead, "/v2/"+repo+"/blobs/"+other.Layers[0].String(), nil); r.Status != http.StatusNotFound {
		a.Errorf("the refused mount linked %s into %s: HEAD → %d", other.Layers[0], repo, r.Status)
	}
	if n := countObjects(t, filepath.Join(s.Data, "blobs")); n != objects {
		a.Errorf("the bucket holds %d objects after the refused requests, %d before", n, objects)
	}
	a.Evidence("state unchanged, checked as admin: HEAD manifests/evil → 404, v1 still %s, tags list identical, the mount source's blob not linked, the file bucket still holds %d objects", img.Digest.String()[:19], objects)
}

func TestCCC_Core_CN05_AR02_C05_TR02_UnauthorizedAdminRefused(t *testing.T) {
	a := assess(t)
	t.Parallel()
	f := shared(t)
	s := f.server
	repo := "team-a/cn05-admin"
	s.pushImage(t, s.Admin, repo, "v1", randomBytes(64))
	policy := "/api/v1/repositories/" + repo + "/lifecycle-policy"
	js := []string{"Content-Type", "application/json"}
	if r := s.do(t, s.Admin, http.MethodPut, policy, []byte(expirePolicy), js...); r.Status/100 != 2 {
		a.Fatalf("PUT the policy as admin: %d %s", r.Status, r.Body)
	}
	policyBefore := s.do(t, s.Admin, http.MethodGet, policy, nil).Body
	victim := s.createToken(t, "cn05-victim", "1h", "repository:team-a/**:pull")
	tokBody := []byte(`{"name":"escalate","scopes":["repository:**:*"],"expiresIn":"1h"}`)
	type try struct {
		method, path string
		body         []byte
	}
	tries := []try{
		{http.MethodPut, policy, []byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)},
		{http.MethodDelete, policy, nil},
		{http.MethodPost, "/api/v1/tokens", tokBody},
		{http.MethodDelete, "/api/v1/tokens/" + victim.TokenID, nil},
	}
	manage := repositoryAPI(t, f)
	if manage {
		tries = append(tries,
			try{http.MethodPatch, "/api/v1/repositories/" + repo, []byte(`{"visibility":"public"}`)},
			try{http.MethodDelete, "/api/v1/repositories/" + repo, nil},
			try{http.MethodPost, "/api/v1/repositories/" + repo + "/tags/v1/restore", []byte(`{"digest":"sha256:` + strings.Repeat("0", 64) + `"}`)},
			try{http.MethodDelete, "/api/v1/repositories/" + repo + "/images/" + f.App.Digest.String(), nil},
		)
	} else {
		a.Evidence("this build serves no repository management routes; lifecycle policies and tokens are the administrative surface assessed")
	}
	var callNames []string
	for _, tr := range tries {
		callNames = append(callNames, tr.method+" "+strings.Replace(tr.path, victim.TokenID, "{id}", 1))
	}
	wrong := s.createToken(t, "cn05-wrong-secret", "1h", "repository:team-a/**:*")
	wrong.Name, wrong.Secret = "a token with a wrong secret", "berth_"+randomHex(32)
	for _, who := range []identity{anonymous, wrong, f.NoAccess, f.Reader, f.OtherTenant} {
		var got []string
		for _, tr := range tries {
			r := s.do(t, who, tr.method, tr.path, tr.body, js...)
			// 404: a delegated token manager sees only the tokens it made.
			if !denied(r.Status) && r.Status != http.StatusNotFound {
				a.Errorf("%s %s as %s: %d %s, want 401, 403 or 404", tr.method, tr.path, who.Name, r.Status, truncate(r.Body))
			}
			got = append(got, fmt.Sprint(r.Status))
		}
		a.Evidence("as %s: %d administrative calls (%s) refused: %s", who.Name, len(tries), strings.Join(callNames, ", "), strings.Join(got, ","))
	}
	if after := s.do(t, s.Admin, http.MethodGet, policy, nil).Body; !bytes.Equal(after, policyBefore) {
		a.Errorf("the lifecycle policy changed: %s, was %s", after, policyBefore)
	}
	if r := s.do(t, victim, http.MethodGet, "/v2/team-a/app/tags/list", nil); r.Status != http.StatusOK {
		a.Errorf("the token others tried to revoke no longer works: %d", r.Status)
	}
	var list struct {
		Tokens []struct{ Name string } `json:"tokens"`
	}
	_ = json.Unmarshal(s.do(t, s.Admin, http.MethodGet, "/api/v1/tokens?n=1000", nil).Body, &list)
	for _, tok := range list.Tokens {
		if tok.Name == "escalate" {
			a.Errorf("a token named escalate was created")
		}
	}
	if manage {
		if r := s.do(t, s.Admin, http.MethodGet, "/api/v1/repositories/"+repo, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"private"`) {
			a.Errorf("repository %s changed: %d %s", repo, r.Status, r.Body)
		}
	}
	a.Evidence("state unchanged, checked as admin: the lifecycle policy is byte-identical, the victim token still works, no token named escalate exists")
	a.Evidence("the writer token (pull,push,delete on team-a/**) may manage team-a's lifecycle policies: the management API is scope-gated, as designed")
}

func TestCCC_Core_CN05_AR03_C05_TR03_TenantBoundary(t *testing.T) {
	a := assess(t)
	t.Parallel()
	f := shared(t)
	s := f.server
	ot := f.OtherTenant
	js := []string{"Content-Type", "application/json"}
	tries := []struct {
		method, path string
		body         []byte
	}{
		{http.MethodPut, "/api/v1/repositories/team-a/app/lifecycle-policy", []byte(expirePolicy)},
		{http.MethodDelete, "/api/v1/repositories/team-a/app/lifecycle-policy", nil},
		{http.MethodDelete, "/v2/team-a/app/manifests/" + f.App.Digest.String(), nil},
		{http.MethodPut, "/v2/team-a/app/manifests/v1", f.Other.Manifest},
	}
	if repositoryAPI(t, f) {
		tries = append(tries, struct {
			method, path string
			body         []byte
		}{http.MethodPatch, "/api/v1/repositories/team-a/app", []byte(`{"visibility":"public"}`)})
	}
	for _, tr := range tries {
		r := s.do(t, ot, tr.method, tr.path, tr.body, js...)
		if r.Status != http.StatusForbidden {
			a.Errorf("%s %s as other-tenant: %d %s, want 403", tr.method, tr.path, r.Status, truncate(r.Body))
			continue
		}
		a.Evidence("%s %s as other-tenant (team-b) → 403", tr.method, tr.path)
	}
	// Mount across the boundary without pull on the source.
	layer := f.App.Layers[0].String()
	r := s.do(t, ot, http.MethodPost, "/v2/team-b/cn05-mount/blobs/uploads/?mount="+layer+"&from=team-a/app", nil)
	if r.Status != http.StatusAccepted {
		a.Errorf("cross-tenant mount as other-tenant: %d, want 202 (an upload session, not a mount)", r.Status)
	}
	if g := s.do(t, ot, http.MethodGet, "/v2/team-b/cn05-mount/blobs/"+layer, nil); g.Status != http.StatusNotFound {
		a.Errorf("after the mount attempt, GET team-b/cn05-mount's blob: %d, want 404", g.Status)
	}
	a.Evidence("mount of team-a/app's layer into team-b/cn05-mount as other-tenant → %d (upload session, nothing linked); GET of the blob there → 404", r.Status)
	// Delegated token administration stays within the tenant.
	for _, sc := range []string{"repository:team-a/**:pull", "repository:**:pull", "repository:team-b/**:pull,push,delete,catalog"} {
		body, _ := json.Marshal(map[string]any{"name": "cross", "scopes": []string{sc}, "expiresIn": "1h"})
		r := s.do(t, ot, http.MethodPost, "/api/v1/tokens", body, js...)
		if r.Status/100 == 2 {
			a.Errorf("other-tenant created a token with scope %s: %d", sc, r.Status)
			continue
		}
		a.Evidence("other-tenant (holding registry:tokens:create) asking for a token with scope %q → %d %v", sc, r.Status, r.errorCodes())
	}
	body, _ := json.Marshal(map[string]any{"name": "inside", "scopes": []string{"repository:team-b/x:pull"}, "expiresIn": "1h"})
	if r := s.do(t, ot, http.MethodPost, "/api/v1/tokens", body, js...); r.Status != http.StatusCreated {
		a.Errorf("other-tenant creating a token inside its own tenant: %d %s, want 201", r.Status, r.Body)
	} else {
		a.Evidence("other-tenant creating a token within team-b → 201 (delegated administration works inside the boundary)")
	}
	a.Evidence("tenants are repository namespaces bounded by token scopes; the only identity allowed across them is the bootstrap admin (a pre-approved identity); there is no origin (CIDR) allowlist for cross-tenant administration, so every other cross-tenant change is refused")
}

// startUpload starts an upload session as id and returns its ID.
func startUpload(t *testing.T, s *server, id identity, repo string) string {
	t.Helper()
	up := s.do(t, id, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil)
	if up.Status != http.StatusAccepted {
		t.Fatalf("start upload as %s: %d", id.Name, up.Status)
	}
	p := strings.TrimPrefix(s.resolve(t, up.Header.Get("Location")), s.URL)
	p = p[strings.LastIndex(p, "/")+1:]
	p, _, _ = strings.Cut(p, "?")
	return p
}

// checkUploadGrace probes auth.UploadGrace: an expired token may finish,
// for an hour, an upload session that started while it was valid. Its
// documentation says "that its holder started"; the probe tells whether a
// session another identity started is also open to it, and whether one
// that started before the token was issued is refused.
func checkUploadGrace(t *testing.T, a *assessment, s *server) {
	t.Helper()
	expired := s.createToken(t, "grace-probe", "2s", "repository:team-a/**:*")
	created := time.Now()
	adminUpload := startUpload(t, s, s.Admin, "team-a/app")
	time.Sleep(time.Until(created.Add(2200 * time.Millisecond)))
	path := "/v2/team-a/app/blobs/uploads/" + adminUpload
	r := s.do(t, expired, http.MethodPatch, path, randomBytes(16), "Content-Type", "application/octet-stream")
	if r.Status/100 == 2 {
		a.Review("an expired token (scope team-a/**) continued with PATCH → %d an upload session that the admin started while the token was valid: auth.UploadGrace grants the one-hour upload grace to any credential valid at the session's start, not only to the identity that started it (the session ID is unguessable and the grant is limited to pull,push on that repository)", r.Status)
	} else {
		a.Evidence("an expired token may not continue an upload session another identity started: PATCH → %d", r.Status)
	}
	// A session older than the token: never open to it.
	older := startUpload(t, s, s.Admin, "team-a/app")
	time.Sleep(1100 * time.Millisecond)
	tok := s.createToken(t, "grace-later", "1s", "repository:team-a/**:*")
	time.Sleep(1100 * time.Millisecond)
	r = s.do(t, tok, http.MethodPatch, "/v2/team-a/app/blobs/uploads/"+older, randomBytes(16), "Content-Type", "application/octet-stream")
	if !denied(r.Status) {
		a.Errorf("a token issued after an upload session started, now expired, continued it: PATCH → %d", r.Status)
	} else {
		a.Evidence("an expired token issued after an upload session started may not continue it: PATCH → %d", r.Status)
	}
}

// checkSignedURLs checks the signed URLs some builds mint: they open one
// blob to anyone holding them, and nothing else.
func checkSignedURLs(t *testing.T, a *assessment, s *server, app image, reader, noAccess identity) {
	t.Helper()
	mint := "/api/v1/repositories/team-a/app/signed-urls"
	body := []byte(`{"digest":"` + app.Layers[0].String() + `","expiresIn":"5m"}`)
	r := s.do(t, reader, http.MethodPost, mint, body, "Content-Type", "application/json")
	if r.Status == http.StatusNotFound {
		return // this build mints no signed URLs
	}
	var minted struct {
		URL  string `json:"url"`
		Path string `json:"path"`
	}
	if r.Status != http.StatusCreated || json.Unmarshal(r.Body, &minted) != nil || minted.Path == "" {
		a.Errorf("POST %s as reader: %d %s, want 201 with a URL", mint, r.Status, truncate(r.Body))
		return
	}
	if d := s.do(t, noAccess, http.MethodPost, mint, body, "Content-Type", "application/json"); !denied(d.Status) {
		a.Errorf("POST %s as no-access: %d, want 401 or 403", mint, d.Status)
	}
	if g := s.do(t, anonymous, http.MethodGet, minted.Path, nil); g.Status != http.StatusOK {
		a.Errorf("GET of a freshly signed URL: %d, want 200", g.Status)
	}
	path, query, _ := strings.Cut(minted.Path, "?")
	bumped := regexp.MustCompile(`expires=(\d+)`).ReplaceAllStringFunc(query, func(m string) string { return m + "0" })
	for _, v := range []struct{ what, method, path string }{
		{"another blob", http.MethodGet, strings.Replace(path, app.Layers[0].String(), app.Config.String(), 1) + "?" + query},
		{"another repository", http.MethodGet, strings.Replace(path, "team-a/app", "team-b/app", 1) + "?" + query},
		{"the manifest route", http.MethodGet, strings.Replace(path, "/blobs/", "/manifests/", 1) + "?" + query},
		{"a later expiry", http.MethodGet, path + "?" + bumped},
		{"DELETE", http.MethodDelete, minted.Path},
		{"an extra parameter", http.MethodGet, minted.Path + "&n=1"},
	} {
		g := s.do(t, anonymous, v.method, v.path, nil)
		if g.Status/100 == 2 {
			a.Errorf("a signed URL altered to %s (%s %s): %d", v.what, v.method, v.path, g.Status)
		}
	}
	a.Evidence("signed URLs: minted by a reader (no-access may not: 403), the URL serves its one blob to anyone (200); altered to another blob, another repository, the manifest route, a later expiry, DELETE or an extra parameter, it is refused")
}

// checkRevokedBearer checks that a short-lived JWT from /token stops
// working when the registry token it was issued to is revoked.
func checkRevokedBearer(t *testing.T, a *assessment, s *server) {
	t.Helper()
	tok := s.createToken(t, "revoke-bearer", "1h", "repository:team-a/**:pull")
	jwt := bearerToken(t, s, tok, "repository:team-a/app:pull")
	path := "/v2/team-a/app/tags/list"
	before := s.do(t, anonymous, http.MethodGet, path, nil, "Authorization", "Bearer "+jwt)
	if r := s.do(t, s.Admin, http.MethodDelete, "/api/v1/tokens/"+tok.TokenID, nil); r.Status != http.StatusNoContent {
		a.Fatalf("revoke: %d", r.Status)
	}
	after := s.do(t, anonymous, http.MethodGet, path, nil, "Authorization", "Bearer "+jwt)
	if before.Status != http.StatusOK {
		a.Errorf("a JWT issued to a registry token: GET → %d, want 200", before.Status)
		return
	}
	if !denied(after.Status) {
		a.Review("a JWT from /token keeps working after the registry token it was issued to is revoked (GET → %d): access tokens are self-contained and stay valid until they expire (auth/token DefaultLifetime, 5 minutes); revocation stops refreshes and new tokens only", after.Status)
		return
	}
	a.Evidence("a JWT from /token issued to a registry token: GET → %d; once the registry token is revoked the same JWT → %d", before.Status, after.Status)
}

// route is one endpoint of the HTTP surface.
type route struct {
	method, path string
	// listing routes may answer 200 with only what the caller may see.
	listing bool
}

// openAPIRoutes returns the method and path of every operation in the
// module's openapi.yaml files, so that new management routes are covered
// without editing this test.
func openAPIRoutes(t *testing.T) ([]route, []string) {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(filepath.Join("..", ".."), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "openapi.yaml" {
			files = append(files, p)
		}
		return nil
	})
	rePath := regexp.MustCompile(`^  (/[^:]*):\s*$`)
	reOp := regexp.MustCompile(`^    (get|put|post|patch|delete|head):`)
	var out []route
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inPaths, cur := false, ""
		for _, line := range strings.Split(string(b), "\n") {
			switch {
			case strings.HasPrefix(line, "paths:"):
				inPaths = true
			case inPaths && line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#"):
				inPaths = false
			case inPaths && rePath.MatchString(line):
				cur = rePath.FindStringSubmatch(line)[1]
			case inPaths && cur != "" && reOp.MatchString(line):
				out = append(out, route{method: strings.ToUpper(reOp.FindStringSubmatch(line)[1]), path: cur})
			}
		}
	}
	return out, files
}

func TestCCC_Core_CN05_AR06_C05_TR06_EveryRouteAuthorized(t *testing.T) {
	a := assess(t)
	t.Parallel()
	// A server of its own, reached from a new loopback address for every
	// request: the failed-login throttle (429 after 10 failures per address
	// and per user name) would otherwise answer for the authorizer.
	s := mustStart(t, serverOptions{RotateSource: true})
	app := s.pushImage(t, s.Admin, "team-a/app", "v1", randomBytes(256))
	otherTenant := s.createToken(t, "other-tenant", "1h", "repository:team-b/**:*")
	noAccess := s.createToken(t, "no-access", "1h", "repository:nobody/**:pull")
	// The registry API (OCI Distribution v1.1), and the management API
	// from the module's OpenAPI documents.
	routes := []route{
		{method: "GET", path: "/v2/"}, {method: "HEAD", path: "/v2/"},
		{method: "GET", path: "/v2/_catalog", listing: true},
		{method: "GET", path: "/v2/{name}/tags/list"},
		{method: "GET", path: "/v2/{name}/manifests/{tag}"}, {method: "HEAD", path: "/v2/{name}/manifests/{tag}"},
		{method: "GET", path: "/v2/{name}/manifests/{digest}"}, {method: "PUT", path: "/v2/{name}/manifests/{tag}"},
		{method: "DELETE", path: "/v2/{name}/manifests/{digest}"}, {method: "DELETE", path: "/v2/{name}/manifests/{tag}"},
		{method: "GET", path: "/v2/{name}/blobs/{layer}"}, {method: "HEAD", path: "/v2/{name}/blobs/{layer}"},
		{method: "DELETE", path: "/v2/{name}/blobs/{layer}"},
		{method: "POST", path: "/v2/{name}/blobs/uploads/"},
		{method: "GET", path: "/v2/{name}/blobs/uploads/{upload}"}, {method: "PATCH", path: "/v2/{name}/blobs/uploads/{upload}"},
		{method: "PUT", path: "/v2/{name}/blobs/uploads/{upload}"}, {method: "DELETE", path: "/v2/{name}/blobs/uploads/{upload}"},
		{method: "GET", path: "/v2/{name}/referrers/{digest}"},
	}
	api, files := openAPIRoutes(t)
	if len(api) == 0 {
		a.Fatalf("no operation found in the module's openapi.yaml files")
	}
	nAPI := 0
	seen := map[string]bool{}
	for _, rt := range api {
		if rt.path == "/token" || seen[rt.method+" "+rt.path] {
			continue // the authentication endpoint itself (see below), or documented twice
		}
		seen[rt.method+" "+rt.path] = true
		if rt.method == "GET" && (rt.path == "/api/v1/repositories" || rt.path == "/api/v1/tokens") {
			rt.listing = true
		}
		routes = append(routes, rt)
		nAPI++
	}
	rel := make([]string, len(files))
	for i, fn := range files {
		rel[i], _ = filepath.Rel(filepath.Join("..", ".."), fn)
	}
	a.Evidence("routes: %d of the OCI distribution API and %d management operations read from %s", len(routes)-nAPI, nAPI, strings.Join(rel, ", "))

	victim := s.createToken(t, "victim", "1h", "repository:team-a/**:pull")
	// The same layer in another repository, for the signed-URL checks.
	if r := s.do(t, s.Admin, http.MethodPost, "/v2/team-b/app/blobs/uploads/?mount="+app.Layers[0].String()+"&from=team-a/app", nil); r.Status != http.StatusCreated {
		t.Fatalf("mount into team-b/app: %d", r.Status)
	}
	// Failed Basic logins also count per user name: a fresh identity of
	// each kind for every few requests keeps below that limit too.
	const perIdentity = 8
	pools := int(float64(len(routes))/perIdentity) + 1
	all := []string{"repository:team-a/**:*", "registry:catalog:*", "registry:tokens:create,list,delete"}
	var expired, revoked, wrongSecret []identity
	for i := range pools {
		expired = append(expired, s.createToken(t, fmt.Sprintf("expired-%d", i), "1s", all...))
		rv := s.createToken(t, fmt.Sprintf("revoked-%d", i), "1h", all...)
		if r := s.do(t, s.Admin, http.MethodDelete, "/api/v1/tokens/"+rv.TokenID, nil); r.Status != http.StatusNoContent {
			a.Fatalf("revoke: %d", r.Status)
		}
		revoked = append(revoked, rv)
		ws := s.createToken(t, fmt.Sprintf("wrong-secret-%d", i), "1h", all...)
		ws.Secret = "berth_" + randomHex(32)
		wrongSecret = append(wrongSecret, ws)
	}
	anonToken := ""
	if r := s.do(t, anonymous, http.MethodGet, "/token?service=berth&scope=repository:team-a/app:pull,push", nil); r.Status == http.StatusOK {
		var tok struct{ Token string }
		_ = json.Unmarshal(r.Body, &tok)
		anonToken = tok.Token
	}
	// An upload session for the route table, started after the 1-second
	// tokens expired (see checkUploadGrace for sessions they could finish).
	time.Sleep(1100 * time.Millisecond)
	uploadID := startUpload(t, s, s.Admin, "team-a/app")
	type caller struct {
		name   string
		id     func(i int) identity
		bearer string
	}
	fixed := func(id identity) func(int) identity { return func(int) identity { return id } }
	pooled := func(p []identity) func(int) identity { return func(i int) identity { return p[i/perIdentity] } }
	callers := []caller{
		{name: "anonymous", id: fixed(anonymous)},
		{name: "admin or a token with a wrong password", id: func(i int) identity {
			if i < perIdentity {
				return identity{Name: "admin (bad password)", User: "admin", Secret: "not-" + randomHex(4)}
			}
			return wrongSecret[i/perIdentity]
		}},
		{name: "an unknown token", id: func(int) identity {
			return identity{Name: "unknown token", User: "token-" + randomHex(12), Secret: "berth_" + randomHex(32)}
		}},
		{name: "an expired token", id: pooled(expired)},
		{name: "a revoked token", id: pooled(revoked)},
		{name: "other-tenant (team-b scopes)", id: fixed(otherTenant)},
		{name: "no-access", id: fixed(noAccess)},
	}
	if anonToken != "" {
		callers = append(callers, caller{name: "the anonymous JWT from /token", id: fixed(identity{Name: "anonymous JWT"}), bearer: anonToken})
	}
	values := map[string]string{
		"{name}": "team-a/app", "{tag}": "v1", "{digest}": app.Digest.String(), "{layer}": app.Layers[0].String(),
		"{upload}": uploadID, "{id}": victim.TokenID, "{reference}": "v1",
	}
	reParam := regexp.MustCompile(`\{[^}]+\}`)
	fill := func(p string) string {
		return reParam.ReplaceAllStringFunc(p, func(m string) string {
			if v, ok := values[m]; ok {
				return v
			}
			return "x"
		})
	}
	checked := 0
	statuses := map[int]int{}
	notServed := map[string]bool{} // documented, but this build answers "no such endpoint" to everyone
	public := map[string]bool{}    // served to anyone
	for _, c := range callers {
		for i, rt := range routes {
			path := fill(rt.path)
			id := c.id(i)
			var hdr []string
			if c.bearer != "" {
				hdr = []string{"Authorization", "Bearer " + c.bearer}
			}
			var body []byte
			if rt.method == "PUT" || rt.method == "POST" || rt.method == "PATCH" {
				body = []byte(`{}`)
				hdr = append(hdr, "Content-Type", "application/json")
			}
			r := s.do(t, id, rt.method, path, body, hdr...)
			checked++
			statuses[r.Status]++
			ok := denied(r.Status)
			if rt.path == "/v2/" && r.Status == http.StatusOK && (c.name == "no-access" || strings.HasPrefix(c.name, "other-tenant")) {
				ok = true // valid credentials: the version check reveals nothing
			}
			if rt.listing && r.Status == http.StatusOK {
				ok = !bytes.Contains(r.Body, []byte("team-a/")) && !bytes.Contains(r.Body, []byte(victim.User))
			}
			if r.Status == http.StatusNotFound && bytes.Contains(r.Body, []byte("no such endpoint")) {
				ok, notServed[rt.method+" "+rt.path] = true, true
			}
			if rt.method == "GET" && strings.HasSuffix(rt.path, "/openapi.yaml") && r.Status == http.StatusOK && bytes.HasPrefix(r.Body, []byte("openapi:")) {
				ok, public[rt.method+" "+rt.path] = true, true
			}
			if !ok {
				a.Errorf("%s %s as %s: %d %s, want 401 or 403", rt.method, path, c.name, r.Status, truncate(r.Body))
				continue
			}
			if rt.method != "HEAD" && denied(r.Status) && len(r.errorCodes()) == 0 {
				a.Errorf("%s %s as %s: %d without a JSON error body: %q", rt.method, path, c.name, r.Status, truncate(r.Body))
			}
			if rt.path == "/v2/" && r.Status == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") == "" {
				a.Errorf("GET /v2/ as %s: 401 without a challenge", c.name)
			}
		}
	}
	names := make([]string, len(callers))
	for i, c := range callers {
		names[i] = c.name
	}
	a.Evidence("%d requests (%d routes × %d unauthorized callers: %s) were all refused with 401/403 and a JSON error body (statuses %v; listings may answer 200 with nothing the caller may not see)",
		checked, len(routes), len(callers), strings.Join(names, ", "), statuses)
	if r := s.do(t, victim, http.MethodGet, "/v2/team-a/app/tags/list", nil); r.Status != http.StatusOK {
		a.Errorf("the token whose routes were probed no longer works: %d", r.Status)
	}
	if len(notServed) > 0 {
		a.Evidence("documented in the OpenAPI documents but not served by this build (404 \"no such endpoint\" whoever asks): %s", strings.Join(sortedKeys(notServed), ", "))
	}
	if len(public) > 0 {
		a.Review("served to anyone, including anonymous callers: %s (the API description: it holds no registry data, but answers unauthenticated requests)", strings.Join(sortedKeys(public), ", "))
	}
	// The token endpoint: wrong credentials get 401; anonymous gets a
	// token that grants nothing (checked as a caller above).
	form := []byte("grant_type=password&service=berth&client_id=ccc&username=" + wrongSecret[len(wrongSecret)-1].User + "&password=wrong")
	if r := s.do(t, anonymous, http.MethodPost, "/token", form, "Content-Type", "application/x-www-form-urlencoded"); r.Status != http.StatusUnauthorized {
		a.Errorf("POST /token with a wrong password: %d %s, want 401", r.Status, truncate(r.Body))
	}
	if r := s.do(t, wrongSecret[len(wrongSecret)-1], http.MethodGet, "/token?service=berth&scope=repository:team-a/app:pull", nil); r.Status != http.StatusUnauthorized {
		a.Errorf("GET /token with a wrong password: %d, want 401", r.Status)
	}
	checkUploadGrace(t, a, s)
	checkRevokedBearer(t, a, s)
	checkSignedURLs(t, a, s, app, victim, noAccess)
	a.Evidence("token endpoint /token: GET and POST (password grant) with a wrong password → 401; the token it issues to anonymous callers carries no access (refused on every route above)")
	checkPathConfusion(t, a, s, app, otherTenant)
}

// checkPathConfusion sends variants of private paths (.., encoded
// slashes, trailing and doubled slashes, NUL, case): none may reach
// protected content.
func checkPathConfusion(t *testing.T, a *assessment, s *server, app image, otherTenant identity) {
	t.Helper()
	variants := []string{
		"/v2/team-a/app/../app/manifests/v1", "/v2/team-a%2Fapp/manifests/v1", "/v2/team-a/app/manifests/v1/",
		"//v2/team-a/app/manifests/v1", "/v2/./team-a/app/tags/list", "/v2/team-a/app/tags/list/", "/v2/team-b/../team-a/app/manifests/v1",
		"/v2/team-a/app/blobs/" + app.Layers[0].String() + "/", "/v2/team-a//app/manifests/v1", "/v2/TEAM-A/app/manifests/v1",
		"/api/v1/repositories/team-a/app/../app/lifecycle-policy", "/api/v1/tokens/", "/api/v1//tokens", "/api/v1/tokens/../tokens",
		"/v2/team-a/app/manifests/v1%00", "/v2/team-a/app/manifests/%2e%2e/v1",
	}
	for _, v := range variants {
		for _, c := range []identity{anonymous, otherTenant} {
			r := s.do(t, c, http.MethodGet, v, nil)
			if r.Status/100 == 2 || bytes.Contains(r.Body, []byte(app.Config.String())) || bytes.Contains(r.Body, []byte(`"tags"`)) {
				a.Errorf("GET %s as %s: %d %s: path confusion reached protected content", v, c.Name, r.Status, truncate(r.Body))
			}
		}
	}
	a.Evidence("%d path-confusion variants (.., encoded slashes, trailing and doubled slashes, NUL, case) as anonymous and other-tenant: none answered 2xx or revealed content", len(variants))
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
