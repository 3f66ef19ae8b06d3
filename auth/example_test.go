package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/berth-dev/berth/auth"
)

func ExampleParseScope() {
	s, err := auth.ParseScope("repository:team/app:pull,push")
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Type, s.Name, s.Actions, s.Allows(auth.Push), s.Allows(auth.Delete))

	_, err = auth.ParseScope("repository:team/app")
	fmt.Println(err)
	// Output:
	// repository team/app [pull push] true false
	// auth: invalid scope "repository:team/app": want "type:name:actions"
}

func ExampleMatch() {
	fmt.Println(auth.Match("team/*", "team/app"))
	fmt.Println(auth.Match("team/*", "team/app/sub")) // '*' does not cross '/'
	fmt.Println(auth.Match("team/**", "team/app/sub"))
	fmt.Println(auth.Match("team/**", "team"))
	// Output:
	// true
	// false
	// true
	// true
}

func ExampleByScheme() {
	basic := auth.AuthenticatorFunc(func(*http.Request) (*auth.Identity, error) { return &auth.Identity{Subject: "from-basic"}, nil })
	bearer := auth.AuthenticatorFunc(func(*http.Request) (*auth.Identity, error) { return &auth.Identity{Subject: "from-bearer"}, nil })
	a := auth.ByScheme(basic, bearer)

	for _, h := range []string{"", "Basic YWRtaW46cHc=", "Bearer eyJ…", "Digest x"} {
		r := httptest.NewRequest("GET", "/v2/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		id, err := a.Authenticate(r)
		switch {
		case err != nil:
			fmt.Println(err)
		case id.IsAnonymous():
			fmt.Println("anonymous")
		default:
			fmt.Println(id.Subject)
		}
	}
	// Output:
	// anonymous
	// from-basic
	// from-bearer
	// auth: invalid credentials
}
