package throttle_test

import (
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/throttle"
)

func Example() {
	limiter, err := throttle.New(&throttle.Options{AddrBurst: 3})
	if err != nil {
		panic(err)
	}
	authn := limiter.Wrap(basic.New(basic.NewStatic("admin", "s3cret", auth.Identity{Admin: true})))

	for i := range 4 {
		r := httptest.NewRequest("GET", "/v2/", nil)
		r.SetBasicAuth("admin", "guess")
		_, err := authn.Authenticate(r)
		var te *auth.ThrottledError
		switch {
		case errors.As(err, &te):
			fmt.Println(i, "throttled; retry after", te.RetryAfterSeconds(), "s")
		case errors.Is(err, auth.ErrUnauthenticated):
			fmt.Println(i, "wrong password")
		}
	}
	// Output:
	// 0 wrong password
	// 1 wrong password
	// 2 wrong password
	// 3 throttled; retry after 6 s
}
