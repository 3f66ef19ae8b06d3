package token_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/bearer"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/throttle"
	"github.com/berth-dev/berth/auth/token"
	"github.com/berth-dev/berth/auth/tokens"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/registry/registrytest"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
)

// lazyRepos lets the policy read the test registry's repositories, which
// exist only once the server has started.
type lazyRepos struct{ r driver.Registry }

func (l *lazyRepos) GetRepository(ctx context.Context, name string) (*driver.Repository, error) {
	if l.r == nil {
		return nil, driver.ErrNotFound
	}
	return l.r.GetRepository(ctx, name)
}

type stack struct {
	host  string // host:port of the front server
	url   string
	reg   driver.Registry
	toks  *tokens.Manager
	svc   *token.Service
	store interface {
		ResumeUpload(ctx context.Context, id string) (*storage.Upload, error)
	}
}

// newStack wires the auth packages around a test registry the way a server
// does, behind one front server: the token endpoint at /token, the
// registry everywhere else (clients accept only realms on the registry's
// own host).
func newStack(t *testing.T, now func() time.Time) *stack {
	t.Helper()
	repos := &lazyRepos{}
	authz := policy.New(repos)

	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	toks, err := tokens.New(newTokenStore(), &tokens.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	admin := basic.NewStatic("admin", "admin-pw", auth.Identity{Admin: true})
	limiter, _ := throttle.New(nil)
	svc, err := token.NewService(key, limiter.Wrap(basic.New(admin, toks)), authz, &token.Options{Service: "berth", Revalidator: token.Revalidators{admin, toks}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var regHandler http.Handler
	mux := http.NewServeMux()
	mux.Handle("/token", svc)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { regHandler.ServeHTTP(w, r) })
	front := httptest.NewServer(mux)
	t.Cleanup(front.Close)

	st := &stack{url: front.URL, host: strings.TrimPrefix(front.URL, "http://"), toks: toks, svc: svc}
	lookup := func(ctx context.Context, id string) (auth.UploadSession, error) {
		u, err := st.store.ResumeUpload(ctx, id)
		if err != nil {
			return auth.UploadSession{}, err
		}
		l := u.Labels()
		return auth.UploadSession{Repository: l[registry.UploadRepositoryLabel], StartedBy: l[registry.UploadSubjectLabel], StartedAt: u.StartedAt()}, nil
	}
	srv := registrytest.NewServer(t, &registrytest.Options{Registry: registry.Options{
		Authenticator: limiter.Wrap(auth.WithUploadSessions(auth.ByScheme(basic.New(admin, toks), bearer.New(svc.Verifier())), lookup)),
		Authorizer:    authz,
		Realm:         front.URL + "/token",
		Service:       "berth",
	}})
	reg, err := srv.Store.Registry()
	if err != nil {
		t.Fatal(err)
	}
	repos.r = reg
	st.reg, st.store = reg, srv.Store
	regHandler = srv.Handler
	return st
}

// TestDockerTokenFlow runs go-containerregistry's client, which follows
// Bearer challenges to the token service, against a registry wired the
// way a server wires the auth packages.
func TestDockerTokenFlow(t *testing.T) {
	ctx := context.Background()
	st := newStack(t, time.Now)
	reg, toks, host := st.reg, st.toks, st.host
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	adminAuth := remote.WithAuth(&authn.Basic{Username: "admin", Password: "admin-pw"})
	img, _ := random.Image(1024, 2)
	for _, r := range []string{"team/app:v1", "pub/app:v1"} {
		if err := remote.Write(ref(r), img, adminAuth); err != nil {
			t.Fatalf("admin push %s: %v", r, err)
		}
	}
	pub, err := reg.GetRepository(ctx, "pub/app")
	if err != nil {
		t.Fatal(err)
	}
	pub.Visibility = driver.Public
	if err := reg.UpdateRepository(ctx, pub); err != nil {
		t.Fatal(err)
	}

	status := func(err error) int {
		var te *transport.Error
		if errors.As(err, &te) {
			return te.StatusCode
		}
		return 0
	}

	// Anonymous: pull public only.
	anon := remote.WithAuth(authn.Anonymous)
	if _, err := remote.Image(ref("pub/app:v1"), anon); err != nil {
		t.Fatalf("anonymous public pull: %v", err)
	}
	if _, err := remote.Image(ref("team/app:v1"), anon); status(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous private pull: %v", err)
	}
	if err := remote.Write(ref("pub/app:v2"), img, anon); status(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous push: %v", err)
	}

	// A registry token for team/*: pull and push there, nothing else.
	tok, secret, err := toks.Create(ctx, &auth.Identity{Subject: "admin", Admin: true},
		tokens.CreateRequest{Name: "ci", Scopes: []string{"repository:team/*:pull,push"}, ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ci := remote.WithAuth(&authn.Basic{Username: tok.Username, Password: secret})
	if _, err := remote.Image(ref("team/app:v1"), ci); err != nil {
		t.Fatalf("token pull: %v", err)
	}
	if err := remote.Write(ref("team/app:v2"), img, ci); err != nil {
		t.Fatalf("token push: %v", err)
	}
	if err := remote.Write(ref("other/app:v1"), img, ci); status(err) != http.StatusForbidden && status(err) != http.StatusUnauthorized {
		t.Fatalf("token push outside its scopes: %v", err)
	}
	if err := remote.Delete(ref("team/app:v2"), ci); status(err) != http.StatusForbidden && status(err) != http.StatusUnauthorized {
		t.Fatalf("token delete without the action: %v", err)
	}
	// A wrong secret never gets a token.
	bad := remote.WithAuth(&authn.Basic{Username: tok.Username, Password: secret + "x"})
	if _, err := remote.Image(ref("team/app:v1"), bad); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("wrong secret: %v", err)
	}
	// Revoked: refused.
	if err := toks.Revoke(ctx, &auth.Identity{Subject: "admin", Admin: true}, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(ref("team/app:v1"), ci); err == nil {
		t.Fatal("revoked token pulled")
	}
}
