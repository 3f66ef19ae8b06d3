package token_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/bearer"
	"github.com/berth-dev/berth/auth/token"
)

func Example() {
	key, err := token.GenerateKey() // token.LoadOrCreateKeyFile(path) in a server
	if err != nil {
		panic(err)
	}
	admin := basic.NewStatic("admin", "admin-password", auth.Identity{Admin: true})
	basicAuthn := basic.New(admin)
	authz := &authtest.Static{Public: []string{"library/*"}} // policy.New(reg) in a server
	svc, err := token.NewService(key, basicAuthn, authz, &token.Options{Service: "berth"})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/token", svc) // registry.Options{Realm: "https://<host>/token", Service: "berth"}

	// An anonymous client asks for pull and push on a public repository.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/token?service=berth&scope=repository:library/alpine:pull,push", nil))
	var resp token.Response
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	fmt.Println(rec.Code, resp.ExpiresIn)

	// The registry verifies the token it gets as a Bearer credential.
	authn := auth.ByScheme(basicAuthn, bearer.New(svc.Verifier()))
	r := httptest.NewRequest("GET", "/v2/library/alpine/manifests/latest", nil)
	r.Header.Set("Authorization", "Bearer "+resp.Token)
	id, err := authn.Authenticate(r)
	if err != nil {
		panic(err)
	}
	fmt.Println(id.Scopes) // pull only: anonymous callers cannot push
	// Output:
	// 200 300
	// [repository:library/alpine:pull]
}
