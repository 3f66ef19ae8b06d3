package bearer_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/auth/bearer"
)

func Example() {
	// Verifiers are tried in turn: typically the token service's
	// Verifier, then a single sign-on jwks.Verifier.
	first := authtest.Tokens{"t1": {Subject: "ci"}}
	second := authtest.Tokens{"t2": {Subject: "sso:alice"}}
	a := bearer.New(first, second)

	for _, tok := range []string{"t1", "t2", "t3"} {
		r := httptest.NewRequest("GET", "/v2/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		id, err := a.Authenticate(r)
		if err != nil {
			fmt.Println(tok, err)
			continue
		}
		fmt.Println(tok, id.Subject)
	}
	// Output:
	// t1 ci
	// t2 sso:alice
	// t3 auth: invalid credentials
}
