package jwks_test

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/jwks"
	"github.com/berth-dev/berth/auth/token"
)

func Example() {
	// A key set as an identity provider publishes it; here, one made by
	// auth/token for the example.
	key, _ := token.GenerateKey()
	set, _ := token.JWKS(key)

	v, err := jwks.NewVerifier(&jwks.Options{
		Issuer:   "berth",
		Audience: "berth",
		JWKS:     set, // or URL: "https://login.example.com/.well-known/jwks.json"
		Claims: jwks.ClaimMapping{
			SubjectPrefix: "sso:",
		},
	})
	if err != nil {
		panic(err)
	}

	// A token from that issuer (here issued by a token service with the key).
	svc, _ := token.NewService(key, auth.AuthenticatorFunc(nil), denyAll{}, nil)
	resp, _ := svc.Issue(context.Background(), &auth.Identity{Subject: "alice"}, nil, false)

	id, err := v.VerifyToken(context.Background(), resp.Token)
	fmt.Println(id.Subject, len(id.Scopes), err)

	_, err = v.VerifyToken(context.Background(), "not-a-token")
	fmt.Println(err)
	// Output:
	// sso:alice 0 <nil>
	// jwks: malformed token or algorithm not allowed: auth: invalid credentials
}

type denyAll struct{}

func (denyAll) Authorize(context.Context, *auth.Identity, []auth.Scope) ([]auth.Scope, error) {
	return nil, nil
}
