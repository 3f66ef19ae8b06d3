package authtest_test

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
)

func ExampleStatic() {
	authz := &authtest.Static{
		Public: []string{"library/*"},
		Grants: map[string][]auth.Scope{"alice": {{Type: "repository", Name: "alice/**", Actions: []string{"*"}}}},
	}
	try := func(subject, repo, action string) bool {
		got, _ := authz.Authorize(context.Background(), &auth.Identity{Subject: subject},
			[]auth.Scope{{Type: "repository", Name: repo, Actions: []string{action}}})
		return auth.Granted(got, "repository", repo, action)
	}
	fmt.Println(try("", "library/alpine", "pull"))
	fmt.Println(try("", "library/alpine", "push"))
	fmt.Println(try("alice", "alice/tools/cli", "push"))
	fmt.Println(try("bob", "alice/tools/cli", "pull"))
	// Output:
	// true
	// false
	// true
	// false
}
