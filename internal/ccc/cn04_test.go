package ccc_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/opencontainers/go-digest"
)

// attempt is one request of an access-log test.
type attempt struct {
	who    identity
	method string
	path   string
	body   []byte
	header []string
	// want lists the acceptable statuses.
	want []int
	// bearer sends a token from /token instead of Basic credentials.
	bearer string
}

// run makes the attempt and checks its status.
func (at attempt) run(t *testing.T, a *assessment, s *server) *response {
	t.Helper()
	hdr := at.header
	who := at.who
	if at.bearer != "" {
		hdr = append(hdr, "Authorization", "Bearer "+at.bearer)
		who = identity{Name: at.who.Name + " (Bearer)"}
	}
	r := s.do(t, who, at.method, at.path, at.body, hdr...)
	ok := false
	for _, w := range at.want {
		ok = ok || r.Status == w
	}
	if !ok {
		a.Errorf("%s %s as %s: %d %s, want one of %v", at.method, at.path, at.who.Name, r.Status, truncate(r.Body), at.want)
	}
	return r
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// checkLogged asserts that the access log holds the attempt's record with
// the identity, a time within two seconds of the request, the method and
// the result.
func checkLogged(t *testing.T, a *assessment, s *server, at attempt, r *response, start time.Time) *events.AccessRecord {
	t.Helper()
	rec, ok := s.accessRecord(t, r.RequestID)
	desc := fmt.Sprintf("%s %s as %s → %d", at.method, at.path, at.who.Name, r.Status)
	if !ok {
		a.Errorf("%s: no access record with request ID %s", desc, r.RequestID)
		return nil
	}
	var problems []string
	if rec.Status != r.Status {
		problems = append(problems, fmt.Sprintf("status %d", rec.Status))
	}
	if rec.Method != at.method {
		problems = append(problems, fmt.Sprintf("method %q", rec.Method))
	}
	if rec.Time.Before(start.Add(-2*time.Second)) || rec.Time.After(time.Now().Add(2*time.Second)) {
		problems = append(problems, fmt.Sprintf("time %s not within ±2 s of the request", rec.Time.Format(time.RFC3339Nano)))
	}
	if rec.ClientAddr == "" {
		problems = append(problems, "no client address")
	}
	switch r.Status {
	case http.StatusUnauthorized:
		if rec.Decision != events.DecisionUnauthenticated {
			problems = append(problems, fmt.Sprintf("decision %q, want %q", rec.Decision, events.DecisionUnauthenticated))
		}
	case http.StatusForbidden:
		if rec.Decision != events.DecisionDeny {
			problems = append(problems, fmt.Sprintf("decision %q, want %q", rec.Decision, events.DecisionDeny))
		}
	}
	if len(problems) > 0 {
		a.Errorf("%s: access record %d is wrong: %s", desc, rec.Seq, strings.Join(problems, "; "))
	}
	if r.Status != http.StatusUnauthorized && at.who.User != "" {
		if rec.Identity != at.who.User {
			msg := fmt.Sprintf("%s: access record %d names identity %q, want %q", desc, rec.Seq, rec.Identity, at.who.User)
			if at.bearer != "" {
				a.Gap("%s (requests authenticated with a Bearer token from /token are not attributed)", msg)
			} else {
				a.Errorf("%s", msg)
			}
		}
	}
	who := rec.Identity
	if who == "" {
		who = "none (client " + rec.ClientAddr + ")"
	}
	a.Evidence("%s: record seq %d at %s: identity %s, decision %q, status %d", desc, rec.Seq, rec.Time.Format(time.RFC3339), who, rec.Decision, rec.Status)
	return rec
}

// bearerToken fetches a JWT for scope from the token service as id.
func bearerToken(t *testing.T, s *server, id identity, scope string) string {
	t.Helper()
	r := s.do(t, id, http.MethodGet, "/token?service=berth&scope="+url.QueryEscape(scope), nil)
	var body struct {
		Token string `json:"token"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &body) != nil || body.Token == "" {
		t.Fatalf("GET /token as %s: %d %s", id.Name, r.Status, r.Body)
	}
	return body.Token
}

// repositoryAPI reports whether the build serves the repository
// management routes (GET /api/v1/repositories/{name}).
func repositoryAPI(t *testing.T, f *fixture) bool {
	t.Helper()
	r := f.do(t, f.Admin, http.MethodGet, "/api/v1/repositories/team-a/app", nil)
	return r.Status == http.StatusOK && strings.Contains(string(r.Body), `"visibility"`)
}

const expirePolicy = `{"rules":[{"rulePriority":1,"description":"expire untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}`

func TestCCC_Core_CN04_AR01_C04_TR01_AdminAttemptsLogged(t *testing.T) {
	a := assess(t)
	t.Parallel()
	f := shared(t)
	f.pushImage(t, f.Admin, "team-a/cn04-admin", "v1", randomBytes(64))
	policy := "/api/v1/repositories/team-a/cn04-admin/lifecycle-policy"
	wrong := identity{Name: "admin with a wrong password", User: "admin", Secret: "wrong"}
	tok := f.createToken(t, "cn04-revoke-me", "1h", "repository:team-a/**:pull")
	tokBody := []byte(`{"name":"cn04","scopes":["repository:team-a/**:pull"],"expiresIn":"1h"}`)
	json := []string{"Content-Type", "application/json"}
	attempts := []attempt{
		{who: f.Admin, method: http.MethodPut, path: policy, body: []byte(expirePolicy), header: json, want: []int{200, 201, 204}},
		{who: f.Reader, method: http.MethodPut, path: policy, body: []byte(expirePolicy), header: json, want: []int{403}},
		{who: anonymous, method: http.MethodPut, path: policy, body: []byte(expirePolicy), header: json, want: []int{401}},
		{who: wrong, method: http.MethodPut, path: policy, body: []byte(expirePolicy), header: json, want: []int{401}},
		{who: f.Reader, method: http.MethodDelete, path: policy, want: []int{403}},
		{who: f.Admin, method: http.MethodDelete, path: policy, want: []int{200, 204}},
		{who: f.Reader, method: http.MethodPost, path: "/api/v1/tokens", body: tokBody, header: json, want: []int{403}},
		{who: anonymous, method: http.MethodPost, path: "/api/v1/tokens", body: tokBody, header: json, want: []int{401}},
		{who: f.Admin, method: http.MethodPost, path: "/api/v1/tokens", body: tokBody, header: json, want: []int{201}},
		{who: f.Writer, method: http.MethodDelete, path: "/api/v1/tokens/" + tok.TokenID, want: []int{403}},
		{who: f.Admin, method: http.MethodDelete, path: "/api/v1/tokens/" + tok.TokenID, want: []int{204}},
		{who: f.Admin, method: http.MethodGet, path: "/token?service=berth&scope=registry:catalog:*", want: []int{200}},
		{who: wrong, method: http.MethodGet, path: "/token?service=berth&scope=registry:catalog:*", want: []int{401}},
		{who: f.Admin, method: http.MethodGet, path: "/api/v1/tokens", want: []int{200}},
		{who: f.Admin, method: http.MethodPut, path: policy, body: []byte(expirePolicy), header: json, want: []int{200, 201, 204},
			bearer: bearerToken(t, f.server, f.Admin, "repository:team-a/cn04-admin:pull,push,delete")},
	}
	if repositoryAPI(t, f) {
		repo := "/api/v1/repositories/team-a/cn04-admin"
		attempts = append(attempts,
			attempt{who: f.Admin, method: http.MethodPatch, path: repo, body: []byte(`{"visibility":"private","immutableTags":true}`), header: json, want: []int{200}},
			attempt{who: f.Reader, method: http.MethodPatch, path: repo, body: []byte(`{"visibility":"public"}`), header: json, want: []int{403}},
			attempt{who: anonymous, method: http.MethodPatch, path: repo, body: []byte(`{"visibility":"public"}`), header: json, want: []int{401}},
		)
	} else {
		a.Evidence("this build serves no repository settings route (PATCH /api/v1/repositories/{name}); lifecycle policies and tokens are the configuration surface assessed")
	}
	for _, at := range attempts {
		start := time.Now()
		r := at.run(t, a, f.server)
		checkLogged(t, a, f.server, at, r, start)
	}
}

func TestCCC_Core_CN04_AR02_C04_TR02_ModifyAttemptsLogged(t *testing.T) {
	a := assess(t)
	t.Parallel()
	f := shared(t)
	repo := "team-a/cn04-modify"
	s := f.server
	// A chunked upload as writer: POST, PATCH, PUT.
	chunk := randomBytes(4096)
	d := digest.FromBytes(chunk)
	log := func(at attempt) *response {
		start := time.Now()
		r := at.run(t, a, s)
		checkLogged(t, a, s, at, r, start)
		return r
	}
	r := log(attempt{who: f.Writer, method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/", want: []int{202}})
	loc := strings.TrimPrefix(s.resolve(t, r.Header.Get("Location")), s.URL)
	r = log(attempt{who: f.Writer, method: http.MethodPatch, path: loc, body: chunk, header: []string{"Content-Type", "application/octet-stream", "Content-Range", "0-4095"}, want: []int{202}})
	loc = strings.TrimPrefix(s.resolve(t, r.Header.Get("Location")), s.URL)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	log(attempt{who: f.Writer, method: http.MethodPut, path: loc + sep + "digest=" + d.String(), want: []int{201}})
	// A failed one: the digest does not match.
	r = log(attempt{who: f.Writer, method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/", want: []int{202}})
	loc = strings.TrimPrefix(s.resolve(t, r.Header.Get("Location")), s.URL)
	sep = "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	bad := log(attempt{who: f.Writer, method: http.MethodPut, path: loc + sep + "digest=" + digest.FromString("other").String(), body: randomBytes(100), want: []int{400}})
	if codes := bad.errorCodes(); len(codes) == 0 || codes[0] != "DIGEST_INVALID" {
		a.Errorf("upload with a wrong digest: codes %v, want DIGEST_INVALID", codes)
	}
	// Manifests and tags.
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	s.pushBlob(t, f.Writer, repo, config)
	m := imageManifest(config, chunk)
	md := digest.FromBytes(m)
	ct := []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}
	log(attempt{who: f.Reader, method: http.MethodPut, path: "/v2/" + repo + "/manifests/v1", body: m, header: ct, want: []int{403}})
	log(attempt{who: f.Writer, method: http.MethodPut, path: "/v2/" + repo + "/manifests/v1", body: m, header: ct, want: []int{201}})
	log(attempt{who: f.Writer, method: http.MethodPut, path: "/v2/" + repo + "/manifests/v2", body: m, header: ct, want: []int{201}})
	log(attempt{who: f.Reader, method: http.MethodDelete, path: "/v2/" + repo + "/manifests/v2", want: []int{403}})
	log(attempt{who: f.Writer, method: http.MethodDelete, path: "/v2/" + repo + "/manifests/v2", want: []int{202}})
	log(attempt{who: f.Reader, method: http.MethodDelete, path: "/v2/" + repo + "/manifests/" + md.String(), want: []int{403}})
	log(attempt{who: anonymous, method: http.MethodDelete, path: "/v2/" + repo + "/manifests/" + md.String(), want: []int{401}})
	log(attempt{who: f.Writer, method: http.MethodDelete, path: "/v2/" + repo + "/manifests/" + md.String(), want: []int{202}})
	log(attempt{who: f.Writer, method: http.MethodPut, path: "/v2/" + repo + "/manifests/v1", body: m, header: ct, want: []int{201},
		bearer: bearerToken(t, s, f.Writer, "repository:"+repo+":pull,push")})
}

func TestCCC_Core_CN04_AR03_C04_TR03_ReadAttemptsLogged(t *testing.T) {
	a := assess(t)
	t.Parallel()
	f := shared(t)
	s := f.server
	repo := "team-a/app"
	log := func(at attempt) {
		start := time.Now()
		r := at.run(t, a, s)
		checkLogged(t, a, s, at, r, start)
	}
	for _, who := range []identity{f.Reader, anonymous} {
		want := []int{200}
		if who.User == "" {
			want = []int{401}
		}
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			log(attempt{who: who, method: m, path: "/v2/" + repo + "/manifests/v1", header: []string{"Accept", "application/vnd.oci.image.manifest.v1+json"}, want: want})
			log(attempt{who: who, method: m, path: "/v2/" + repo + "/blobs/" + f.App.Layers[0].String(), want: want})
		}
		log(attempt{who: who, method: http.MethodGet, path: "/v2/" + repo + "/tags/list", want: want})
	}
	log(attempt{who: f.Reader, method: http.MethodGet, path: "/v2/_catalog", want: []int{200}})
	log(attempt{who: anonymous, method: http.MethodGet, path: "/v2/_catalog", want: []int{401}})
	log(attempt{who: f.OtherTenant, method: http.MethodGet, path: "/v2/" + repo + "/manifests/v1", want: []int{403}})
	log(attempt{who: f.Reader, method: http.MethodGet, path: "/v2/" + repo + "/manifests/v1", want: []int{200},
		bearer: bearerToken(t, s, f.Reader, "repository:"+repo+":pull")})
	if !repositoryAPI(t, f) {
		a.Evidence("this build cannot make a repository public through its API, so anonymous reads of a public repository were not exercised")
		return
	}
	pub := "team-a/cn04-public"
	img := s.pushImage(t, s.Admin, pub, "v1", randomBytes(64))
	r := s.do(t, s.Admin, http.MethodPatch, "/api/v1/repositories/"+pub, []byte(`{"visibility":"public"}`), "Content-Type", "application/json")
	if r.Status != http.StatusOK {
		a.Fatalf("PATCH %s visibility public: %d %s", pub, r.Status, r.Body)
	}
	log(attempt{who: anonymous, method: http.MethodGet, path: "/v2/" + pub + "/manifests/" + img.Digest.String(), want: []int{200}})
	log(attempt{who: anonymous, method: http.MethodGet, path: "/v2/" + pub + "/blobs/" + img.Layers[0].String(), want: []int{200}})
}
