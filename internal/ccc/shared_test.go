package ccc_test

import (
	"sync"
	"testing"
)

// fixture is the registryd most tests share, with the identities of
// shared/CCC.md §4 and some content. Tests that change content use
// repositories of their own.
type fixture struct {
	*server
	// Reader may pull team-a/**; Writer may pull, push and delete there;
	// OtherTenant may do all three on team-b/** and manage tokens within
	// that; NoAccess holds a scope on an unrelated namespace only.
	Reader, Writer, OtherTenant, NoAccess identity
	// App is team-a/app:v1; Other is team-b/x:v1.
	App, Other image
}

var sharedFix struct {
	once sync.Once
	f    *fixture
}

// shared returns the shared registryd, starting it on first use.
func shared(t *testing.T) *fixture {
	t.Helper()
	registrydPath(t)
	sharedFix.once.Do(func() {
		// A new source address per request keeps the tests' deliberate
		// failed logins from throttling one another by client address.
		s, err := startServer(nil, serverOptions{RotateSource: true})
		if err != nil {
			t.Fatal(err)
		}
		f := &fixture{server: s}
		sharedFix.f = f // stopShared stops it even if the setup below fails
		f.Reader = s.createToken(t, "reader", "24h", "repository:team-a/**:pull")
		f.Writer = s.createToken(t, "writer", "24h", "repository:team-a/**:pull,push,delete")
		f.OtherTenant = s.createToken(t, "other-tenant", "24h", "repository:team-b/**:pull,push,delete", "registry:tokens:create,list,delete")
		f.NoAccess = s.createToken(t, "no-access", "24h", "repository:nobody/**:pull")
		f.App = s.pushImage(t, s.Admin, "team-a/app", "v1", randomBytes(1024))
		f.Other = s.pushImage(t, s.Admin, "team-b/x", "v1", randomBytes(1024))
	})
	f := sharedFix.f
	if f == nil || f.Other.Digest == "" {
		t.Fatal("the shared registryd could not be set up; see the log of the first test that used it")
	}
	return f
}

// stopShared stops the shared registryd, if it was started.
func stopShared() {
	if sharedFix.f != nil {
		sharedFix.f.stop()
	}
}
