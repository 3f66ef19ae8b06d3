package policy

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
)

func TestConformance(t *testing.T) {
	authtest.RunAuthorizerTests(t, func(t *testing.T, public, private []string) auth.Authorizer {
		ctx := context.Background()
		m := memmeta.New()
		for vis, names := range map[driver.Visibility][]string{driver.Public: public, driver.Private: private} {
			for _, name := range names {
				if err := m.CreateRepository(ctx, &driver.Repository{Name: name, Visibility: vis}); err != nil {
					t.Fatal(err)
				}
			}
		}
		return New(m)
	})
}

func TestPolicy(t *testing.T) {
	ctx := context.Background()
	m := memmeta.New()
	for name, vis := range map[string]driver.Visibility{"pub/app": driver.Public, "team/app": driver.Private} {
		if err := m.CreateRepository(ctx, &driver.Repository{Name: name, Visibility: vis}); err != nil {
			t.Fatal(err)
		}
	}
	a := New(m)
	tok := &auth.Identity{Subject: "ci", Scopes: []auth.Scope{{Type: "repository", Name: "team/*", Actions: []string{"pull", "push"}}}}
	cases := []struct {
		id     *auth.Identity
		repo   string
		action string
		want   bool
	}{
		{auth.Anonymous, "pub/app", "pull", true},
		{auth.Anonymous, "pub/app", "push", false},
		{auth.Anonymous, "pub/app", "delete", false},
		{auth.Anonymous, "team/app", "pull", false},
		{auth.Anonymous, "missing/app", "pull", false},
		{&auth.Identity{Subject: "bob"}, "team/app", "pull", false},
		{&auth.Identity{Subject: "admin", Admin: true}, "team/app", "delete", true},
		{tok, "team/app", "push", true},
		{tok, "team/app", "delete", false},
		{tok, "team/x/y", "pull", false}, // '*' does not cross '/'
		{tok, "other/app", "pull", false},
		{tok, "pub/app", "pull", true},
	}
	for _, c := range cases {
		got, err := a.Authorize(ctx, c.id, []auth.Scope{{Type: "repository", Name: c.repo, Actions: []string{c.action}}})
		if err != nil {
			t.Fatal(err)
		}
		if ok := auth.Granted(got, "repository", c.repo, c.action); ok != c.want {
			t.Errorf("%q %s %s: granted=%v, want %v", c.id.Subject, c.action, c.repo, ok, c.want)
		}
	}
}

type failingLookup struct{}

func (failingLookup) GetRepository(context.Context, string) (*driver.Repository, error) {
	return nil, errors.New("backend down")
}

// A lookup failure is an error (callers deny), never a grant.
func TestLookupFailure(t *testing.T) {
	a := New(failingLookup{})
	got, err := a.Authorize(context.Background(), auth.Anonymous, []auth.Scope{{Type: "repository", Name: "pub/app", Actions: []string{"pull"}}})
	if err == nil || got != nil {
		t.Fatalf("got %v, %v; want an error", got, err)
	}
	// Nil lookup: everything private.
	got, err = New(nil).Authorize(context.Background(), auth.Anonymous, []auth.Scope{{Type: "repository", Name: "pub/app", Actions: []string{"pull"}}})
	if err != nil || auth.Granted(got, "repository", "pub/app", "pull") {
		t.Fatalf("nil lookup: %v, %v", got, err)
	}
}
