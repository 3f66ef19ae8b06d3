package signedurl_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/signedurl"
	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gocloud.dev/secrets/localsecrets"
)

// syncBuffer is an access-log output read while the server runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	srv    *httptest.Server
	clock  *fakeClock
	log    *syncBuffer
	img    v1.Image
	layers []v1.Hash
}

const (
	adminPass = "admin-password"
	pullTok   = "pull-team-app"
	otherTok  = "pull-team-other"
	shortTok  = "pull-team-app-short"
)

// newEnv serves a registry with the default policy, HTTP Basic for the
// admin, bearer tokens of two scoped callers, signed URLs and the
// management route, behind the access log, over real HTTP; it pushes an
// image to team/app:v1 and team/other:v1 with a real client.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	key, err := localsecrets.NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	meta := memmeta.New()
	store, err := storage.Open(ctx, "mem://", meta, &storage.Options{Keeper: localsecrets.NewKeeper(key)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(); _ = meta.Close() })
	reg, err := store.Registry()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{clock: &fakeClock{now: time.Now().Truncate(time.Second)}, log: &syncBuffer{}}
	signer, err := signedurl.NewSigner([]signedurl.Key{key1, key2}, &signedurl.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	scope := func(s string) []auth.Scope {
		sc, err := auth.ParseScope(s)
		if err != nil {
			t.Fatal(err)
		}
		return []auth.Scope{sc}
	}
	toks := authtest.Tokens{
		pullTok:  {Subject: "ci", Scopes: scope("repository:team/app:pull")},
		otherTok: {Subject: "other", Scopes: scope("repository:team/other:pull")},
		shortTok: {Subject: "short", Scopes: scope("repository:team/app:pull"), ExpiresAt: e.clock.now.Add(2 * time.Minute)},
	}
	users := authtest.Users{Passwords: map[string]string{"admin": adminPass}, Admins: []string{"admin"}}
	authn := signer.Wrap(auth.ByScheme(users, toks))
	h, err := registry.New(store, &registry.Options{Authenticator: authn, Authorizer: policy.New(reg)})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := signedurl.NewHandler(signer, reg, func(r *http.Request, repo string) (*auth.Identity, error) {
		return h.Authorize(r, repo, auth.Pull)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	al, err := events.NewAccessLog(&events.AccessLogOptions{Output: e.log})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(al.Middleware(sh.Wrap(h)))
	t.Cleanup(e.srv.Close)

	e.img, err = random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := e.img.Layers()
	for _, l := range ls {
		d, _ := l.Digest()
		e.layers = append(e.layers, d)
	}
	for _, repo := range []string{"team/app", "team/other"} {
		e.push(t, repo+":v1", e.img)
	}
	return e
}

func (e *env) push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(e.srv.URL, "http://")+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: adminPass})); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// mint posts body to repo's signed-urls route as the holder of token.
func (e *env) mint(t *testing.T, repo, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/repositories/"+repo+"/signed-urls", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func (e *env) mintOK(t *testing.T, repo, body string) signedurl.CreatedURL {
	t.Helper()
	res, b := e.mint(t, repo, pullTok, body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("mint %s: %s %s", body, res.Status, b)
	}
	var c signedurl.CreatedURL
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// get fetches target with no credentials, as curl would.
func get(t *testing.T, method, target string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// wantUnauthorized checks a 401 with the spec's error body.
func wantUnauthorized(t *testing.T, what string, res *http.Response, body []byte) {
	t.Helper()
	var eb struct {
		Errors []struct{ Code, Message string }
	}
	if res.StatusCode != http.StatusUnauthorized || json.Unmarshal(body, &eb) != nil || len(eb.Errors) != 1 || eb.Errors[0].Code != "UNAUTHORIZED" {
		t.Fatalf("%s: %s %s; want 401 UNAUTHORIZED", what, res.Status, body)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestSignedURLsEndToEnd(t *testing.T) {
	e := newEnv(t)
	imgDigest, _ := e.img.Digest()

	// Without credentials, nothing is readable.
	res, b := get(t, "GET", e.srv.URL+"/v2/team/app/manifests/v1")
	wantUnauthorized(t, "anonymous pull", res, b)

	// A manifest by tag: the URL names the digest the tag points at now.
	m := e.mintOK(t, "team/app", `{"reference":"v1","expiresIn":"10m"}`)
	if m.Kind != signedurl.Manifest || m.Digest.String() != imgDigest.String() || !strings.Contains(m.Path, imgDigest.String()) {
		t.Fatalf("minted %+v, want the manifest %s", m, imgDigest)
	}
	if want := e.clock.now.Add(10 * time.Minute); !m.ExpiresAt.Equal(want) {
		t.Fatalf("expiresAt %v, want %v", m.ExpiresAt, want)
	}
	if !strings.HasPrefix(m.URL, e.srv.URL+"/v2/") {
		t.Fatalf("url %q not on the server %s", m.URL, e.srv.URL)
	}
	res, b = get(t, "GET", m.URL)
	if res.StatusCode != 200 || sha(b) != imgDigest.String() || res.Header.Get("Docker-Content-Digest") != imgDigest.String() {
		t.Fatalf("GET signed manifest: %s, body digest %s", res.Status, sha(b))
	}
	res, b = get(t, "HEAD", m.URL)
	if res.StatusCode != 200 || len(b) != 0 {
		t.Fatalf("HEAD signed manifest: %s", res.Status)
	}

	// A blob by digest, read with the plain client.
	bl := e.mintOK(t, "team/app", `{"digest":"`+e.layers[0].String()+`"}`)
	if !bl.ExpiresAt.Equal(e.clock.now.Add(signedurl.DefaultExpiresIn)) {
		t.Fatalf("default expiry %v", bl.ExpiresAt)
	}
	r2, err := http.Get(bl.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != 200 || sha(body) != e.layers[0].String() {
		t.Fatalf("GET signed blob: %s, digest %s", r2.Status, sha(body))
	}
	if got := mustQuery(t, bl.Path).Get(signedurl.ParamKeyID); got != "k2" {
		t.Fatalf("signed with %q, want the newest key", got)
	}

	// Moving the tag does not change what the URL serves.
	img2, _ := random.Image(1024, 1)
	e.push(t, "team/app:v1", img2)
	res, b = get(t, "GET", m.URL)
	if res.StatusCode != 200 || sha(b) != imgDigest.String() {
		t.Fatalf("after the tag moved: %s, digest %s", res.Status, sha(b))
	}

	// Tampering: each answered 401 with the spec's body.
	u, _ := url.Parse(bl.URL)
	q := u.Query()
	exp, _ := strconv.ParseInt(q.Get(signedurl.ParamExpires), 10, 64)
	for what, target := range map[string]string{
		"other blob of the repository":    e.srv.URL + "/v2/team/app/blobs/" + e.layers[1].String() + "?" + u.RawQuery,
		"same blob in another repository": e.srv.URL + "/v2/team/other/blobs/" + e.layers[0].String() + "?" + u.RawQuery,
		"tag list":                        e.srv.URL + "/v2/team/app/tags/list?" + u.RawQuery,
		"later expiry":                    e.srv.URL + tamper(bl.Path, signedurl.ParamExpires, strconv.FormatInt(exp+3600, 10)),
		"other signature":                 e.srv.URL + tamper(bl.Path, signedurl.ParamSignature, mustQuery(t, m.Path).Get(signedurl.ParamSignature)),
		"unknown key":                     e.srv.URL + tamper(bl.Path, signedurl.ParamKeyID, "nope"),
	} {
		res, b := get(t, "GET", target)
		wantUnauthorized(t, what, res, b)
	}
	// Other methods on the signed path, even with admin credentials.
	for _, method := range []string{"DELETE", "PUT", "POST"} {
		req, _ := http.NewRequest(method, bl.URL, nil)
		req.SetBasicAuth("admin", adminPass)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		wantUnauthorized(t, method, res, b)
	}
	res, _ = get(t, "GET", bl.URL)
	if res.StatusCode != 200 {
		t.Fatalf("the blob is gone after the refused DELETE: %s", res.Status)
	}

	// A signed-URL identity cannot mint URLs of its own.
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/repositories/team/app/signed-urls?"+u.RawQuery, strings.NewReader(`{"reference":"v1"}`))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("minting with a signed URL: %s", res.Status)
	}

	// Expiry.
	e.clock.now = bl.ExpiresAt
	res, b = get(t, "GET", bl.URL)
	wantUnauthorized(t, "expired", res, b)

	// The access log has every request, never a signature.
	logText := e.log.String()
	for _, sig := range []string{q.Get(signedurl.ParamSignature), mustQuery(t, m.Path).Get(signedurl.ParamSignature)} {
		if strings.Contains(logText, sig) {
			t.Fatalf("the access log contains a signature")
		}
	}
	if !strings.Contains(logText, "signature=REDACTED") {
		t.Fatalf("the access log does not record the redacted query:\n%s", logText)
	}
}

func TestMintRefuses(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name, repo, token, body string
		status                  int
		code                    string
	}{
		{"anonymous", "team/app", "", `{"reference":"v1"}`, 401, "UNAUTHORIZED"},
		{"bad token", "team/app", "nope", `{"reference":"v1"}`, 401, "UNAUTHORIZED"},
		{"no pull", "team/app", otherTok, `{"reference":"v1"}`, 403, "DENIED"},
		{"unknown repository", "team/none", pullTok, `{"reference":"v1"}`, 403, "DENIED"},
		{"unknown tag", "team/app", pullTok, `{"reference":"v9"}`, 404, "MANIFEST_UNKNOWN"},
		{"unknown manifest", "team/app", pullTok, `{"reference":"` + dgst.String() + `"}`, 404, "MANIFEST_UNKNOWN"},
		{"unknown blob", "team/app", pullTok, `{"digest":"` + dgst.String() + `"}`, 404, "BLOB_UNKNOWN"},
		{"both", "team/app", pullTok, `{"reference":"v1","digest":"` + dgst.String() + `"}`, 400, "BODY_INVALID"},
		{"neither", "team/app", pullTok, `{}`, 400, "BODY_INVALID"},
		{"unknown field", "team/app", pullTok, `{"reference":"v1","ttl":"1m"}`, 400, "BODY_INVALID"},
		{"not JSON", "team/app", pullTok, `reference=v1`, 400, "BODY_INVALID"},
		{"two objects", "team/app", pullTok, `{"reference":"v1"}{}`, 400, "BODY_INVALID"},
		{"bad tag", "team/app", pullTok, `{"reference":"-x"}`, 400, "TAG_INVALID"},
		{"bad digest", "team/app", pullTok, `{"digest":"sha256:00"}`, 400, "DIGEST_INVALID"},
		{"bad duration", "team/app", pullTok, `{"reference":"v1","expiresIn":"soon"}`, 400, "EXPIRY_INVALID"},
		{"beyond max", "team/app", pullTok, `{"reference":"v1","expiresIn":"2h"}`, 400, "EXPIRY_INVALID"},
		{"bad name", "Team/App", pullTok, `{"reference":"v1"}`, 400, "NAME_INVALID"},
		{"huge body", "team/app", pullTok, `{"reference":"` + strings.Repeat("a", 8<<10) + `"}`, 413, "SIZE_INVALID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, b := e.mint(t, c.repo, c.token, c.body)
			var eb struct{ Errors []struct{ Code string } }
			if res.StatusCode != c.status || json.Unmarshal(b, &eb) != nil || len(eb.Errors) != 1 || eb.Errors[0].Code != c.code {
				t.Fatalf("%s %s; want %d %s", res.Status, b, c.status, c.code)
			}
			// A 401 challenges the client (RFC 9110, section 15.5.2).
			if ch := res.Header.Get("WWW-Authenticate"); (c.status == 401) != (ch == `Basic realm="berth"`) {
				t.Fatalf("WWW-Authenticate %q", ch)
			}
		})
	}
	// The body is JSON: another Content-Type is refused before it is read.
	for ct, want := range map[string]int{"text/plain": 415, "application/x-www-form-urlencoded": 415, "application/json; charset=utf-8": 201, "nonsense/": 415} {
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/repositories/team/app/signed-urls", strings.NewReader(`{"reference":"v1"}`))
		req.Header.Set("Authorization", "Bearer "+pullTok)
		req.Header.Set("Content-Type", ct)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want || want == 415 && !strings.Contains(string(b), `"BODY_INVALID"`) {
			t.Errorf("Content-Type %q: %s %s, want %d", ct, res.Status, b, want)
		}
	}
	res, b := get(t, "GET", e.srv.URL+"/api/v1/repositories/team/app/signed-urls")
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %s %s", res.Status, b)
	}

	// A URL never outlives the credentials that minted it.
	res, b = e.mint(t, "team/app", shortTok, `{"reference":"v1","expiresIn":"30m"}`)
	var c signedurl.CreatedURL
	if res.StatusCode != 201 || json.Unmarshal(b, &c) != nil {
		t.Fatalf("short-lived token: %s %s", res.Status, b)
	}
	if want := e.clock.now.Add(2 * time.Minute); !c.ExpiresAt.Equal(want) {
		t.Fatalf("expiresAt %v, want the token's expiry %v", c.ExpiresAt, want)
	}
}

func TestNewHandlerOptions(t *testing.T) {
	signer, err := signedurl.NewSigner([]signedurl.Key{key1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := memmeta.New()
	allow := func(*http.Request, string) (*auth.Identity, error) { return &auth.Identity{Subject: "x"}, nil }
	if _, err := signedurl.NewHandler(signer, reg, nil, nil); err == nil {
		t.Error("NewHandler without an AuthorizeFunc succeeded")
	}
	for _, o := range []signedurl.HandlerOptions{{BaseURL: "ftp://registry.example"}, {Realm: `a"b`}, {Realm: "a\nb"}} {
		if _, err := signedurl.NewHandler(signer, reg, allow, &o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	if _, err := signedurl.NewHandler(signer, reg, allow, &signedurl.HandlerOptions{BaseURL: "https://registry.example/", Realm: "registry"}); err != nil {
		t.Error(err)
	}
}
