package basic

import (
	"context"
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

func TestStaticRevalidate(t *testing.T) {
	s := NewStatic("admin", "s3cret", auth.Identity{Admin: true})
	id, err := s.Revalidate(t.Context(), "admin")
	if err != nil || id.Subject != "admin" || !id.Admin {
		t.Fatalf("%+v %v", id, err)
	}
	id.Admin = false
	if again, _ := s.Revalidate(t.Context(), "admin"); !again.Admin {
		t.Fatal("the returned identity aliases the verifier's")
	}
	if _, err := s.Revalidate(t.Context(), "root"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("other user: %v", err)
	}
}

type failing struct{}

func (failing) Verify(context.Context, string, string) (*auth.Identity, error) {
	return nil, errors.New("backend down")
}

// A verifier that cannot decide stops the search with its error.
func TestVerifierError(t *testing.T) {
	a := New(failing{}, NewStatic("admin", "s3cret", auth.Identity{Admin: true}))
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth("admin", "s3cret")
	if _, err := a.Authenticate(r); err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("%v", err)
	}
}
