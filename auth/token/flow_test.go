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

// TestDockerTokenFlow runs go-containerregistry's client, which follows
// Bearer challenges to the token service, against a registry wired the
// way a server wires the auth packages.
func TestDockerTokenFlow(t *testing.T) {
	ctx := context.Background()
	repos := &lazyRepos{}
	authz := policy.New(repos)

	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tokenStore := newTokenStore()
	toks, err := tokens.New(tokenStore, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin := basic.NewStatic("admin", "admin-pw", auth.Identity{Admin: true})
	limiter, _ := throttle.New(nil)
	basicAuthn := limiter.Wrap(basic.New(admin, toks))
	svc, err := token.NewService(key, basicAuthn, authz, &token.Options{Service: "berth", Revalidator: token.Revalidators{admin, toks}})
	if err != nil {
		t.Fatal(err)
	}
	// One server, as in production: the token endpoint at /token, the
	// registry everywhere else (clients accept only realms on the
	// registry's own host).
	var regHandler http.Handler
	mux := http.NewServeMux()
	mux.Handle("/token", svc)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { regHandler.ServeHTTP(w, r) })
	front := httptest.NewServer(mux)
	defer front.Close()

	srv := registrytest.NewServer(t, &registrytest.Options{Registry: registry.Options{
		Authenticator: auth.ByScheme(basicAuthn, bearer.New(svc.Verifier())),
		Authorizer:    authz,
		Realm:         front.URL + "/token",
		Service:       "berth",
	}})
	reg, err := srv.Store.Registry()
	if err != nil {
		t.Fatal(err)
	}
	repos.r = reg
	regHandler = srv.Handler
	host := strings.TrimPrefix(front.URL, "http://")

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
