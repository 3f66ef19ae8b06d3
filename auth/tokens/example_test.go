package tokens_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/tokens"
	"github.com/berth-dev/berth/storage/memmeta"
)

func Example() {
	ctx := context.Background()
	meta := memmeta.New() // any driver.Tokens: sqlmeta in production
	toks, err := tokens.New(meta, nil)
	if err != nil {
		panic(err)
	}
	admin := &auth.Identity{Subject: "admin", Admin: true}
	tok, secret, err := toks.Create(ctx, admin, tokens.CreateRequest{
		Name:   "ci",
		Scopes: []string{"repository:team/*:pull,push"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.HasPrefix(tok.Username, tokens.UsernamePrefix), strings.HasPrefix(secret, tokens.SecretPrefix))

	// The token logs in with HTTP Basic, as its user name and secret.
	authn := basic.New(basic.NewStatic("admin", "admin-password", auth.Identity{Admin: true}), toks)
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth(tok.Username, secret)
	id, err := authn.Authenticate(r)
	if err != nil {
		panic(err)
	}
	fmt.Println(id.Scopes)
	// Output:
	// true true
	// [repository:team/*:pull,push]
}

func ExampleNewAPI() {
	meta := memmeta.New()
	toks, _ := tokens.New(meta, nil)
	authn := basic.New(basic.NewStatic("admin", "admin-password", auth.Identity{Admin: true}), toks)
	api, err := tokens.NewAPI(toks, authn, policy.New(meta), nil)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/tokens", api)
	mux.Handle("/api/v1/tokens/", api)

	req := httptest.NewRequest("POST", "/api/v1/tokens", strings.NewReader(`{"name":"ci","scopes":["repository:team/*:pull,push"],"expiresIn":"720h"}`))
	req.SetBasicAuth("admin", "admin-password")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, strings.Contains(rec.Body.String(), `"secret":"berth_`))

	req = httptest.NewRequest("POST", "/api/v1/tokens", strings.NewReader(`{"name":"ci","scopes":["repository:team/*:fly"]}`))
	req.SetBasicAuth("admin", "admin-password")
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 201 true
	// 400 {"errors":[{"code":"INVALID_SCOPE","message":"auth: invalid scope \"repository:team/*:fly\": action \"fly\" not allowed (want pull, push, delete, *)"}]}
}
