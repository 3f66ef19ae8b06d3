package policy_test

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
)

func Example() {
	ctx := context.Background()
	meta := memmeta.New()
	_ = meta.CreateRepository(ctx, &driver.Repository{Name: "pub/app", Visibility: driver.Public})
	_ = meta.CreateRepository(ctx, &driver.Repository{Name: "team/app", Visibility: driver.Private})
	authz := policy.New(meta)

	ci := &auth.Identity{Subject: "token-ci", Scopes: []auth.Scope{{Type: "repository", Name: "team/*", Actions: []string{"pull", "push"}}}}
	for _, c := range []struct {
		id     *auth.Identity
		repo   string
		action string
	}{
		{auth.Anonymous, "pub/app", "pull"},
		{auth.Anonymous, "pub/app", "push"},
		{auth.Anonymous, "team/app", "pull"},
		{ci, "team/app", "push"},
		{ci, "team/app", "delete"},
	} {
		got, _ := authz.Authorize(ctx, c.id, []auth.Scope{{Type: "repository", Name: c.repo, Actions: []string{c.action}}})
		fmt.Printf("%-10s %-6s %-8s %v\n", c.id.Subject, c.action, c.repo, auth.Granted(got, "repository", c.repo, c.action))
	}
	// Output:
	//            pull   pub/app  true
	//            push   pub/app  false
	//            pull   team/app false
	// token-ci   push   team/app true
	// token-ci   delete team/app false
}
