package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const adminPW = "admin-secret-pw-0123456789"

// node is a registryd started by the test.
type node struct {
	addr, data string
}

// start runs registryd on a free loopback port over plain HTTP with data
// under a new directory and extra flags, until the test ends.
func start(t *testing.T, extra ...string) *node {
	t.Helper()
	t.Setenv("BERTH_ADMIN_PASSWORD", adminPW)
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args := append([]string{"--insecure-http", "--addr", "127.0.0.1:0", "--data", data}, extra...)
	go func() { done <- run(ctx, args, io.Discard, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("registryd: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return &node{addr: addr, data: data}
	case err := <-done:
		t.Fatalf("registryd did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("registryd did not start in 30s")
	}
	return nil
}

// do sends one request and returns the response with its body read.
func (n *node) do(t *testing.T, method, path string, body string, set func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func basicAuth(user, pw string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pw) }
}

// createToken makes a registry token through the management API.
func (n *node) createToken(t *testing.T, body string) (user, secret string) {
	t.Helper()
	resp, b := n.do(t, "POST", "/api/v1/tokens", body, func(r *http.Request) {
		r.SetBasicAuth("admin", adminPW)
		r.Header.Set("Content-Type", "application/json")
	})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create token: %d %s", resp.StatusCode, b)
	}
	var c struct{ Username, Secret string }
	if err := json.Unmarshal([]byte(b), &c); err != nil {
		t.Fatal(err)
	}
	return c.Username, c.Secret
}

// accessLog returns the records of the node's access log, after checking
// its hash chain.
func (n *node) accessLog(t *testing.T) (raw []byte, recs []*events.AccessRecord) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(n.data, "access-*.log"))
	if len(files) != 1 {
		t.Fatalf("access logs: %v", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	rep, err := events.VerifyAccessLog(bytes.NewReader(raw), nil)
	if err != nil || !rep.OK() {
		t.Fatalf("access log chain: %v %+v", err, rep)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		rec, err := events.DecodeAccessRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return raw, recs
}

// find returns the last record matching f.
func find(t *testing.T, recs []*events.AccessRecord, what string, f func(*events.AccessRecord) bool) *events.AccessRecord {
	t.Helper()
	for i := len(recs) - 1; i >= 0; i-- {
		if f(recs[i]) {
			return recs[i]
		}
	}
	t.Fatalf("no access record of %s", what)
	return nil
}

// TestAccessLogIdentities pulls through registryd's whole stack with a
// real registry client (the Docker token flow: Basic credentials at the
// token service, then a Bearer JWT), with Basic credentials directly, and
// denied, and checks the access records: who, what, the decision, and
// that no secret is in the log.
func TestAccessLogIdentities(t *testing.T) {
	n := start(t)
	admin := &authn.Basic{Username: "admin", Password: adminPW}
	ref, err := name.ParseReference(n.addr+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(admin)); err != nil {
		t.Fatalf("push: %v", err)
	}
	d, _ := img.Digest()

	user, secret := n.createToken(t, `{"name":"ci","scopes":["repository:team/**:pull"]}`)
	pulled, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: user, Password: secret}))
	if err != nil {
		t.Fatalf("pull with the token: %v", err)
	}
	if _, err := pulled.RawManifest(); err != nil {
		t.Fatal(err)
	}
	// The JWT the client used never appears in the log: fetch one to
	// look for it.
	resp, b := n.do(t, "GET", "/token?service=berth&scope=repository:team/app:pull", "", basicAuth(user, secret))
	var tok struct{ Token string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(b), &tok) != nil || tok.Token == "" {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	bearer := func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+tok.Token)
		r.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	}
	if resp, b := n.do(t, "GET", "/v2/team/app/manifests/v1", "", bearer); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET with the bearer token: %d %s", resp.StatusCode, b)
	}
	// Denied: the bearer token has no scope on other/app; the registry
	// token's Basic credentials may not push; a wrong password.
	if resp, _ := n.do(t, "GET", "/v2/other/app/manifests/v1", "", bearer); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET outside the token's scope: %d", resp.StatusCode)
	}
	if resp, _ := n.do(t, "DELETE", "/v2/team/app/manifests/"+d.String(), "", basicAuth(user, secret)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("DELETE with a pull-only token: %d", resp.StatusCode)
	}
	if resp, _ := n.do(t, "GET", "/v2/team/app/tags/list", "", basicAuth(user, "wrong-"+secret)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET with a wrong secret: %d", resp.StatusCode)
	}
	// A signed-URL style query: its signature is redacted.
	if resp, _ := n.do(t, "GET", "/v2/team/app/blobs/"+d.String()+"?X-Amz-Signature=sig-0123456789abcdef&X-Amz-Credential=AKIAEXAMPLE&token=tok-secret-value&n=1",
		"", basicAuth(user, secret)); resp.StatusCode == http.StatusOK {
		t.Fatal("the manifest digest served as a blob")
	}
	// Management API and lifecycle routes, by Basic and Bearer.
	if resp, b := n.do(t, "GET", "/api/v1/tokens", "", basicAuth(user, secret)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tokens API with a pull token: %d %s", resp.StatusCode, b)
	}
	if resp, b := n.do(t, "GET", "/api/v1/repositories/team/app/lifecycle-policy", "", bearer); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("lifecycle policy with a bearer token: %d %s", resp.StatusCode, b)
	}

	raw, recs := n.accessLog(t)
	check := func(what string, f func(*events.AccessRecord) bool, identity, decision string, status int) {
		t.Helper()
		r := find(t, recs, what, f)
		if r.Identity != identity || r.Decision != decision || r.Status != status || r.RequestID == "" || r.ClientAddr != "127.0.0.1" {
			t.Errorf("%s: identity %q decision %q status %d (request %q from %q); want %q %q %d",
				what, r.Identity, r.Decision, r.Status, r.RequestID, r.ClientAddr, identity, decision, status)
		}
	}
	check("the client's bearer pull", func(r *events.AccessRecord) bool {
		return r.Route == events.RouteManifest && r.Repository == "team/app" && r.Method == "GET" && r.Status == 200 &&
			r.Identity == user && r.Reference == "v1" && r.Seq < recs[len(recs)-8].Seq
	}, user, events.DecisionAllow, 200)
	check("the token request", func(r *events.AccessRecord) bool {
		return r.Method == "GET" && strings.HasPrefix(r.Query, "scope=") && r.Identity == user
	}, user, events.DecisionAllow, 200)
	check("the bearer GET", func(r *events.AccessRecord) bool {
		return r.Route == events.RouteManifest && r.Repository == "team/app" && r.Status == 200 && r.Identity == user
	}, user, events.DecisionAllow, 200)
	check("the bearer GET outside its scope", func(r *events.AccessRecord) bool { return r.Repository == "other/app" },
		user, events.DecisionDeny, 401)
	check("the DELETE", func(r *events.AccessRecord) bool { return r.Method == "DELETE" }, user, events.DecisionDeny, 403)
	check("the wrong secret", func(r *events.AccessRecord) bool { return r.Route == events.RouteTags }, "", events.DecisionUnauthenticated, 401)
	check("the tokens API", func(r *events.AccessRecord) bool {
		return r.Route == events.RouteAPI && r.Repository == "" && r.Status == 403
	},
		user, events.DecisionDeny, 403)
	check("the lifecycle route", func(r *events.AccessRecord) bool { return r.Route == events.RouteAPI && r.Repository == "team/app" },
		user, events.DecisionAllow, 404)
	blob := find(t, recs, "the signed blob GET", func(r *events.AccessRecord) bool { return r.Route == events.RouteBlob && r.Query != "" })
	if blob.Reference != d.String() || blob.Identity != user || blob.Decision != events.DecisionAllow ||
		!strings.Contains(blob.Query, "X-Amz-Signature=REDACTED") || !strings.Contains(blob.Query, "n=1") {
		t.Errorf("signed blob GET: %+v", blob)
	}
	push := find(t, recs, "the admin's push", func(r *events.AccessRecord) bool { return r.Method == "PUT" && r.Route == events.RouteManifest })
	if push.Identity != "admin" || push.Decision != events.DecisionAllow || push.Status != 201 || push.BytesIn == 0 {
		t.Errorf("push: %+v", push)
	}
	for _, secretText := range []string{adminPW, secret, tok.Token, "sig-0123456789abcdef", "AKIAEXAMPLE", "tok-secret-value", "Bearer", "Basic ", "Authorization"} {
		if bytes.Contains(raw, []byte(secretText)) {
			t.Errorf("the access log contains %q", secretText)
		}
	}
}

// TestTokenRateLimit checks a registry token's own rate limit: 429 with
// Retry-After and TOOMANYREQUESTS past its burst, over Basic and Bearer
// alike, recorded as rate-limited; other identities are not affected.
func TestTokenRateLimit(t *testing.T) {
	n := start(t)
	user, secret := n.createToken(t, `{"name":"slow","scopes":["repository:team/**:pull"],"rateLimit":{"perSecond":0.01,"burst":3}}`)
	for i := range 3 {
		if resp, b := n.do(t, "GET", "/v2/", "", basicAuth(user, secret)); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i+1, resp.StatusCode, b)
		}
	}
	resp, b := n.do(t, "GET", "/v2/team/app/tags/list", "", basicAuth(user, secret))
	wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || wait < 90 || wait > 101 || !strings.Contains(b, `"TOOMANYREQUESTS"`) {
		t.Fatalf("request past the burst: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	// The token service is limited too, and the management API.
	if resp, _ := n.do(t, "GET", "/token?service=berth", "", basicAuth(user, secret)); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("token service past the burst: %d", resp.StatusCode)
	}
	if resp, _ := n.do(t, "GET", "/api/v1/repositories/team/app/lifecycle-policy", "", basicAuth(user, secret)); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("lifecycle route past the burst: %d", resp.StatusCode)
	}
	if resp, _ := n.do(t, "GET", "/v2/", "", basicAuth("admin", adminPW)); resp.StatusCode != http.StatusOK {
		t.Fatalf("admin: %d", resp.StatusCode)
	}
	_, recs := n.accessLog(t)
	r := find(t, recs, "the limited request", func(r *events.AccessRecord) bool { return r.Route == events.RouteTags })
	if r.Identity != user || r.Decision != events.DecisionRateLimited || r.Status != 429 {
		t.Errorf("limited request: %+v", r)
	}
}

// TestSharedRateLimit runs two registryd nodes on one PostgreSQL database:
// a token's allowance is one across both.
func TestSharedRateLimit(t *testing.T) {
	meta := "--meta-url=" + testsvc.Postgres(t)
	a, b := start(t, meta), start(t, meta)
	user, secret := a.createToken(t, `{"name":"shared","scopes":["repository:team/**:pull"],"rateLimit":{"perSecond":0.01,"burst":4}}`)
	for i, n := range []*node{a, b, a, b} {
		if resp, body := n.do(t, "GET", "/v2/", "", basicAuth(user, secret)); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the shared burst: %d %s", i+1, resp.StatusCode, body)
		}
	}
	for _, n := range []*node{a, b} {
		if resp, _ := n.do(t, "GET", "/v2/", "", basicAuth(user, secret)); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("request past the shared burst on %s: %d", n.addr, resp.StatusCode)
		}
	}
}
