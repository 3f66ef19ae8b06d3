package basic_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
)

func Example() {
	// The bootstrap admin; registry tokens (auth/tokens) are another
	// Verifier to list after it.
	a := basic.New(basic.NewStatic("admin", "s3cret", auth.Identity{Admin: true}))

	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth("admin", "s3cret")
	id, err := a.Authenticate(r)
	fmt.Println(id.Subject, id.Admin, err)

	r.SetBasicAuth("admin", "guess")
	_, err = a.Authenticate(r)
	fmt.Println(err)
	// Output:
	// admin true <nil>
	// auth: invalid credentials
}
