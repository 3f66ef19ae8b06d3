package authtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/berth-dev/berth/auth"
)

// NewAuthorizer returns the Authorizer under test, set up so that the
// repositories named in public exist and are public, those in private
// exist and are private, and no other repository exists.
type NewAuthorizer func(t *testing.T, public, private []string) auth.Authorizer

// The repositories RunAuthorizerTests sets up.
var (
	suitePublic  = []string{"pub/app", "pub/tools/cli"}
	suitePrivate = []string{"team/app", "team/app/sub", "team/web", "other/app", "teamx/app", "team"}
)

// RunAuthorizerTests runs the conformance suite against the authorizers
// newAuthorizer returns, one per subtest:
//
//	func TestConformance(t *testing.T) {
//		authtest.RunAuthorizerTests(t, func(t *testing.T, public, private []string) auth.Authorizer {
//			return newMyAuthorizer(t, public, private) // repositories set up as named
//		})
//	}
//
// It checks that the authorizer denies by default (unknown identities,
// private and missing repositories, registry scopes, unknown types), grants
// anonymous callers pull on public repositories and nothing else there,
// lets an administrator without Scopes do everything and binds one with
// Scopes, grants a scoped identity exactly what its patterns cover (with
// auth.Match semantics: '*' within a segment, '**' across segments,
// malformed patterns matching nothing), never grants more than requested
// nor modifies the request, and is safe for concurrent use.
func RunAuthorizerTests(t *testing.T, newAuthorizer NewAuthorizer) {
	t.Helper()
	setup := func(t *testing.T) auth.Authorizer {
		t.Helper()
		a := newAuthorizer(t, slices.Clone(suitePublic), slices.Clone(suitePrivate))
		if a == nil {
			t.Fatal("newAuthorizer returned nil")
		}
		return a
	}
	t.Run("DefaultDeny", func(t *testing.T) { testDefaultDeny(t, setup(t)) })
	t.Run("PublicPullOnly", func(t *testing.T) { testPublicPullOnly(t, setup(t)) })
	t.Run("Admin", func(t *testing.T) { testAdmin(t, setup(t)) })
	t.Run("ScopedIdentity", func(t *testing.T) { testScoped(t, setup(t)) })
	t.Run("PatternSemantics", func(t *testing.T) { testPatterns(t, setup(t)) })
	t.Run("NeverMoreThanRequested", func(t *testing.T) { testSubset(t, setup(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, setup(t)) })
}

type check struct {
	id     *auth.Identity
	typ    string
	name   string
	action string
	want   bool
}

func (c check) String() string {
	who := "anonymous"
	if c.id != nil && c.id.Subject != "" {
		who = c.id.Subject
	}
	return fmt.Sprintf("%s %s:%s:%s", who, c.typ, c.name, c.action)
}

func runChecks(t *testing.T, a auth.Authorizer, checks []check) {
	t.Helper()
	for _, c := range checks {
		granted, err := a.Authorize(context.Background(), c.id, []auth.Scope{{Type: c.typ, Name: c.name, Actions: []string{c.action}}})
		if err != nil {
			t.Errorf("%v: %v", c, err)
			continue
		}
		if got := auth.Granted(granted, c.typ, c.name, c.action); got != c.want {
			t.Errorf("%v: granted=%v, want %v", c, got, c.want)
		}
	}
}

func repo(id *auth.Identity, name, action string, want bool) check {
	return check{id: id, typ: auth.TypeRepository, name: name, action: action, want: want}
}

func mustScopes(t *testing.T, ss ...string) []auth.Scope {
	t.Helper()
	out := []auth.Scope{}
	for _, s := range ss {
		sc, err := auth.ParseScope(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sc)
	}
	return out
}

func testDefaultDeny(t *testing.T, a auth.Authorizer) {
	bob := &auth.Identity{Subject: "bob"}
	empty := &auth.Identity{Subject: "empty", Scopes: []auth.Scope{}}
	var checks []check
	for _, id := range []*auth.Identity{nil, auth.Anonymous, bob, empty} {
		for _, name := range append(slices.Clone(suitePrivate), "missing/app") {
			for _, act := range []string{auth.Pull, auth.Push, auth.Delete, auth.All} {
				checks = append(checks, repo(id, name, act, false))
			}
		}
		for _, name := range suitePublic {
			checks = append(checks, repo(id, name, auth.Push, false), repo(id, name, auth.Delete, false))
		}
		checks = append(checks,
			check{id: id, typ: auth.TypeRegistry, name: "catalog", action: auth.All},
			check{id: id, typ: auth.TypeRegistry, name: "tokens", action: "create"},
			check{id: id, typ: "unknown", name: "pub/app", action: auth.Pull},
		)
	}
	runChecks(t, a, checks)
	// A request for nothing grants nothing, without error.
	got, err := a.Authorize(context.Background(), bob, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("empty request: %v, %v", got, err)
	}
}

func testPublicPullOnly(t *testing.T, a auth.Authorizer) {
	bob := &auth.Identity{Subject: "bob"}
	scoped := &auth.Identity{Subject: "ci", Scopes: mustScopes(t, "repository:team/app:pull")}
	var checks []check
	for _, id := range []*auth.Identity{auth.Anonymous, bob, scoped} {
		for _, name := range suitePublic {
			checks = append(checks,
				repo(id, name, auth.Pull, true),
				repo(id, name, auth.Push, false),
				repo(id, name, auth.Delete, false),
				repo(id, name, auth.All, false))
		}
		// Patterns never reach public repositories through the lookup.
		checks = append(checks, repo(id, "pub/*", auth.Pull, false), repo(id, "pub/**", auth.Pull, false))
	}
	runChecks(t, a, checks)
}

func testAdmin(t *testing.T, a auth.Authorizer) {
	admin := &auth.Identity{Subject: "admin", Admin: true}
	bound := &auth.Identity{Subject: "admin-jwt", Admin: true, Scopes: mustScopes(t, "repository:team/app:pull")}
	runChecks(t, a, []check{
		repo(admin, "team/app", auth.Delete, true),
		repo(admin, "missing/app", auth.Push, true),
		repo(admin, "pub/app", auth.Push, true),
		{id: admin, typ: auth.TypeRegistry, name: "catalog", action: auth.All, want: true},
		// An admin holding Scopes is bound by them.
		repo(bound, "team/app", auth.Pull, true),
		repo(bound, "team/app", auth.Push, false),
		repo(bound, "team/web", auth.Pull, false),
		{id: bound, typ: auth.TypeRegistry, name: "catalog", action: auth.All, want: false},
	})
}

func testScoped(t *testing.T, a auth.Authorizer) {
	ci := &auth.Identity{Subject: "ci", Scopes: mustScopes(t, "repository:team/*:pull,push", "registry:catalog:*")}
	del := &auth.Identity{Subject: "ops", Scopes: mustScopes(t, "repository:team/web:*")}
	runChecks(t, a, []check{
		repo(ci, "team/app", auth.Pull, true),
		repo(ci, "team/app", auth.Push, true),
		repo(ci, "team/app", auth.Delete, false),
		repo(ci, "team/new", auth.Push, true), // patterns cover repositories not created yet
		repo(ci, "other/app", auth.Pull, false),
		repo(ci, "other/app", auth.Push, false),
		repo(ci, "team", auth.Pull, false),
		{id: ci, typ: auth.TypeRegistry, name: "catalog", action: auth.All, want: true},
		{id: ci, typ: auth.TypeRegistry, name: "tokens", action: "create", want: false},
		repo(del, "team/web", auth.Delete, true),
		repo(del, "team/web", auth.Push, true),
		repo(del, "team/app", auth.Pull, false),
	})
}

func testPatterns(t *testing.T, a auth.Authorizer) {
	star := &auth.Identity{Subject: "star", Scopes: mustScopes(t, "repository:team/*:pull")}
	deep := &auth.Identity{Subject: "deep", Scopes: mustScopes(t, "repository:team/**:pull")}
	q := &auth.Identity{Subject: "q", Scopes: mustScopes(t, "repository:team/we?:pull")}
	all := &auth.Identity{Subject: "all", Scopes: mustScopes(t, "repository:*:pull")}
	bad := &auth.Identity{Subject: "bad", Scopes: mustScopes(t, "repository:team/[:pull")}
	runChecks(t, a, []check{
		repo(star, "team/app", auth.Pull, true),
		repo(star, "team/app/sub", auth.Pull, false), // '*' does not cross '/'
		repo(star, "teamx/app", auth.Pull, false),
		repo(star, "team", auth.Pull, false),
		repo(deep, "team/app", auth.Pull, true),
		repo(deep, "team/app/sub", auth.Pull, true),
		repo(deep, "team", auth.Pull, true), // '**' matches zero segments
		repo(deep, "teamx/app", auth.Pull, false),
		repo(q, "team/web", auth.Pull, true),
		repo(q, "team/app", auth.Pull, false),
		repo(all, "team", auth.Pull, true),
		repo(all, "other/app", auth.Pull, false), // "*" is one segment
		repo(all, "team/app/sub", auth.Pull, false),
		repo(bad, "team/[", auth.Pull, false), // a malformed pattern matches nothing
		repo(bad, "team/app", auth.Pull, false),
	})
}

func testSubset(t *testing.T, a auth.Authorizer) {
	ids := []*auth.Identity{
		auth.Anonymous,
		{Subject: "admin", Admin: true},
		{Subject: "ci", Scopes: mustScopes(t, "repository:team/*:*")},
	}
	req := []auth.Scope{
		{Type: auth.TypeRepository, Name: "team/app", Actions: []string{auth.Pull}},
		{Type: auth.TypeRepository, Name: "pub/app", Actions: []string{auth.Pull, auth.Push}},
		{Type: auth.TypeRepository, Name: "other/app", Actions: []string{auth.Delete}},
	}
	for _, id := range ids {
		in := slices.Clone(req)
		got, err := a.Authorize(context.Background(), id, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if len(g.Actions) == 0 {
				continue
			}
			i := slices.IndexFunc(req, func(r auth.Scope) bool { return r.Type == g.Type && r.Name == g.Name })
			if i < 0 {
				t.Errorf("%s: granted unrequested scope %v", id.Subject, g)
				continue
			}
			for _, act := range g.Actions {
				if !slices.Contains(req[i].Actions, act) {
					t.Errorf("%s: granted unrequested action %q on %s", id.Subject, act, g.Name)
				}
			}
		}
		for i := range in {
			if !slices.Equal(in[i].Actions, req[i].Actions) {
				t.Errorf("%s: Authorize modified the request", id.Subject)
			}
		}
	}
}

func testConcurrent(t *testing.T, a auth.Authorizer) {
	ci := &auth.Identity{Subject: "ci", Scopes: mustScopes(t, "repository:team/*:pull")}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				id, name, want := auth.Anonymous, "pub/app", true
				if (i+j)%2 == 0 {
					id, name, want = ci, "other/app", false
				}
				got, err := a.Authorize(context.Background(), id, []auth.Scope{{Type: auth.TypeRepository, Name: name, Actions: []string{auth.Pull}}})
				if err != nil {
					t.Error(err)
					return
				}
				if auth.Granted(got, auth.TypeRepository, name, auth.Pull) != want {
					t.Errorf("concurrent %s pull %s: want %v", id.Subject, name, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
