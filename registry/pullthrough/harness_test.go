package pullthrough_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/bearer"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/token"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/registry/pullthrough"
	"github.com/berth-dev/berth/registry/registrytest"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gocloud.dev/secrets/localsecrets"
)

// Upstream users: the administrator, and a reader allowed to pull only
// "other/*".
const (
	upUser     = "mirror"
	upPassword = "mirror-secret"
	readerUser = "reader"
	readerPass = "reader-secret"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// upstream is a second registry (registrytest) that the cache mirrors,
// behind a front server that counts requests and can fail on demand.
type upstream struct {
	*httptest.Server
	reg *registrytest.Server
	// mode: "" serves; "503" answers 503 everywhere; "429" answers 429
	// for repository requests.
	mode atomic.Value
	// delay slows blob and manifest GETs down, so that concurrent misses
	// overlap.
	delay atomic.Int64

	mu     sync.Mutex
	counts map[string]int
}

// newUpstream starts an upstream requiring credentials: HTTP Basic, or
// with bearer set, Bearer tokens from its token service at /token.
func newUpstream(t testing.TB, bearerAuth bool) *upstream {
	t.Helper()
	u := &upstream{counts: map[string]int{}}
	u.mode.Store("")
	admin := basic.NewStatic(upUser, upPassword, auth.Identity{Admin: true})
	reader := basic.NewStatic(readerUser, readerPass, auth.Identity{Scopes: []auth.Scope{{Type: auth.TypeRepository, Name: "other/*", Actions: []string{auth.Pull}}}})
	authz := policy.New(nil) // admin everything, scoped users their scopes, nothing anonymous
	users := basic.New(admin, reader)
	var regHandler http.Handler
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { regHandler.ServeHTTP(w, r) })
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.count(r)
		switch u.mode.Load().(string) {
		case "503":
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		case "429":
			if strings.Count(r.URL.Path, "/") > 2 {
				w.Header().Set("Retry-After", "7")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`)
				return
			}
		}
		if d := u.delay.Load(); d > 0 && r.Method == http.MethodGet && (strings.Contains(r.URL.Path, "/blobs/") || strings.Contains(r.URL.Path, "/manifests/")) {
			time.Sleep(time.Duration(d))
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	opts := registry.Options{Authenticator: users, Authorizer: authz, Logger: quiet}
	if bearerAuth {
		key, err := token.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		svc, err := token.NewService(key, users, authz, &token.Options{Service: "upstream", Revalidator: token.Revalidators{admin, reader}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle("/token", svc)
		opts.Authenticator = auth.ByScheme(users, bearer.New(svc.Verifier()))
		opts.Realm = u.URL + "/token"
		opts.Service = "upstream"
	}
	u.reg = registrytest.NewServer(t, &registrytest.Options{Registry: opts})
	regHandler = u.reg.Handler
	return u
}

// count records a request as "METHOD kind", kind being manifest, blob,
// token or base.
func (u *upstream) count(r *http.Request) {
	kind := "base"
	switch {
	case strings.Contains(r.URL.Path, "/manifests/"):
		kind = "manifest"
	case strings.Contains(r.URL.Path, "/blobs/"):
		kind = "blob"
	case r.URL.Path == "/token":
		kind = "token"
	}
	u.mu.Lock()
	u.counts[r.Method+" "+kind]++
	u.mu.Unlock()
}

// n returns how many requests of "METHOD kind" the upstream received.
func (u *upstream) n(key string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[key]
}

func (u *upstream) host() string { return strings.TrimPrefix(u.URL, "http://") }

// push writes an image to the upstream as its administrator.
func (u *upstream) push(t testing.TB, repoTag string, img v1.Image) v1.Hash {
	t.Helper()
	ref, err := name.ParseReference(u.host()+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: upUser, Password: upPassword})); err != nil {
		t.Fatalf("push %s upstream: %v", repoTag, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pushIndex writes an index and its images to the upstream.
func (u *upstream) pushIndex(t *testing.T, repoTag string, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	ref, err := name.ParseReference(u.host()+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithAuth(&authn.Basic{Username: upUser, Password: upPassword})); err != nil {
		t.Fatalf("push index %s upstream: %v", repoTag, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// clock is a manual clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// mirror is the registry under test: a store with encryption on, a
// pull-through cache, and the registry handler, over HTTP.
type mirror struct {
	*httptest.Server
	store *storage.Store
	cache *pullthrough.Cache
	clock *clock
}

type mirrorOptions struct {
	cache pullthrough.Options
	// authorize wires the default policy (reading visibility through
	// Cache.Repositories) and the registrytest admin; default: anyone may
	// do anything.
	authorize bool
	// metaURL opens the metadata backend (sqlite://…, postgres://…);
	// default the in-memory one.
	metaURL string
	// blobURL opens the bucket; default mem://.
	blobURL string
}

func newMirror(t testing.TB, ups []pullthrough.Upstream, mo *mirrorOptions) *mirror {
	t.Helper()
	if mo == nil {
		mo = &mirrorOptions{}
	}
	key, err := localsecrets.NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now().UTC()}
	var meta driver.Metadata = memmeta.New()
	if mo.metaURL != "" {
		if meta, err = sqlmeta.Open(t.Context(), mo.metaURL); err != nil {
			t.Fatal(err)
		}
	}
	blobURL := "mem://"
	if mo.blobURL != "" {
		blobURL = mo.blobURL
	}
	store, err := storage.Open(t.Context(), blobURL, meta, &storage.Options{Keeper: localsecrets.NewKeeper(key), Now: clk.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	co := mo.cache
	co.Now = clk.Now
	if co.Logger == nil {
		co.Logger = quiet
	}
	cache, err := pullthrough.New(store, ups, &co)
	if err != nil {
		t.Fatal(err)
	}
	ro := &registry.Options{Authorizer: authtest.AllowAll{}, Mirror: cache, Logger: quiet}
	if mo.authorize {
		reg, err := store.Registry()
		if err != nil {
			t.Fatal(err)
		}
		ro.Authorizer = policy.New(cache.Repositories(reg))
		ro.Authenticator = authtest.Users{Passwords: map[string]string{registrytest.AdminUser: registrytest.AdminPassword}, Admins: []string{registrytest.AdminUser}}
	}
	h, err := registry.New(store, ro)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = store.Close()
		_ = meta.Close()
	})
	return &mirror{Server: srv, store: store, cache: cache, clock: clk}
}

func (m *mirror) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(m.URL, "http://")+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// get sends a request to the mirror and returns the response with its
// body read.
func (m *mirror) get(t *testing.T, method, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, m.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// specError returns the first error code and message of a spec error body.
func specError(t *testing.T, b []byte) (string, string) {
	t.Helper()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(b, &body); err != nil || len(body.Errors) == 0 {
		t.Fatalf("not a spec error body: %q", b)
	}
	return body.Errors[0].Code, body.Errors[0].Message
}

// hubOf returns the usual test configuration: "hub/" → upstream "lib/".
func hubOf(u *upstream) pullthrough.Upstream {
	return pullthrough.Upstream{Prefix: "hub/", URL: u.URL, Remote: "lib/", Username: upUser, Password: upPassword}
}

func ctxT(t *testing.T) context.Context { return t.Context() }
