package basic

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/berth-dev/berth/auth"
)

func TestAuthenticate(t *testing.T) {
	a := New(NewStatic("admin", "s3cret", auth.Identity{Admin: true}))
	r := httptest.NewRequest("GET", "/v2/", nil)
	if id, err := a.Authenticate(r); err != nil || !id.IsAnonymous() {
		t.Fatalf("no credentials: %v, %v", id, err)
	}
	r.SetBasicAuth("admin", "s3cret")
	if id, err := a.Authenticate(r); err != nil || id.Subject != "admin" || !id.Admin {
		t.Fatalf("good credentials: %+v, %v", id, err)
	}
	for _, c := range [][2]string{{"admin", "wrong"}, {"root", "s3cret"}, {"", ""}} {
		r.SetBasicAuth(c[0], c[1])
		id, err := a.Authenticate(r)
		if !errors.Is(err, auth.ErrUnauthenticated) || id != nil {
			t.Fatalf("%v: %v, %v", c, id, err)
		}
	}
	r.Header.Set("Authorization", "Basic !!!notbase64")
	if _, err := a.Authenticate(r); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("malformed header: %v", err)
	}
}
