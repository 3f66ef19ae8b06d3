package authtest_test

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
)

func TestStaticConformance(t *testing.T) {
	authtest.RunAuthorizerTests(t, func(t *testing.T, public, _ []string) auth.Authorizer {
		return &authtest.Static{Public: public}
	})
}

func TestStaticGrants(t *testing.T) {
	a := &authtest.Static{Grants: map[string][]auth.Scope{
		"alice": {{Type: "repository", Name: "alice/*", Actions: []string{"pull", "push"}}},
		"":      {{Type: "repository", Name: "open/*", Actions: []string{"pull"}}},
	}}
	cases := []struct {
		id           *auth.Identity
		name, action string
		want         bool
	}{
		{&auth.Identity{Subject: "alice"}, "alice/app", "push", true},
		{&auth.Identity{Subject: "alice"}, "alice/app", "delete", false},
		{&auth.Identity{Subject: "alice", Scopes: []auth.Scope{}}, "alice/app", "pull", false},
		{&auth.Identity{Subject: "bob"}, "alice/app", "pull", false},
		{auth.Anonymous, "open/x", "pull", true},
		{auth.Anonymous, "open/x", "push", false},
	}
	for _, c := range cases {
		got, err := a.Authorize(t.Context(), c.id, []auth.Scope{{Type: "repository", Name: c.name, Actions: []string{c.action}}})
		if err != nil {
			t.Fatal(err)
		}
		if auth.Granted(got, "repository", c.name, c.action) != c.want {
			t.Errorf("%q %s %s: want %v", c.id.Subject, c.action, c.name, c.want)
		}
	}
}

func TestAllowAllConformsOnlyToGrants(t *testing.T) {
	got, _ := authtest.AllowAll{}.Authorize(t.Context(), nil, []auth.Scope{{Type: "repository", Name: "x", Actions: []string{"push"}}})
	if !auth.Granted(got, "repository", "x", "push") {
		t.Fatal("AllowAll denied")
	}
}

func TestTokens(t *testing.T) {
	ts := authtest.Tokens{"t1": {Subject: "ci", Scopes: []auth.Scope{{Type: "repository", Name: "a", Actions: []string{"pull"}}}}}
	r := httptest.NewRequest("GET", "/v2/", nil)
	if id, err := ts.Authenticate(r); err != nil || !id.IsAnonymous() {
		t.Fatal(id, err)
	}
	r.Header.Set("Authorization", "Bearer t1")
	id, err := ts.Authenticate(r)
	if err != nil || id.Subject != "ci" {
		t.Fatal(id, err)
	}
	id.Scopes[0].Name = "changed"
	if ts["t1"].Scopes[0].Name != "a" {
		t.Fatal("the fake's identity was modified through a returned copy")
	}
	for _, h := range []string{"Bearer t2", "Basic YTpi", "Bearer "} {
		r.Header.Set("Authorization", h)
		if _, err := ts.Authenticate(r); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%q: %v", h, err)
		}
	}
}
