package lifecycle_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lifecycle"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/opencontainers/go-digest"
)

// Evaluating an ECR lifecycle policy: a dry run of what it would expire.
func Example() {
	policy, err := lifecycle.Parse([]byte(`{
	  "rules": [
	    {"rulePriority": 1, "description": "keep the 2 newest releases",
	     "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "imageCountMoreThan", "countNumber": 2},
	     "action": {"type": "expire"}},
	    {"rulePriority": 2, "description": "expire untagged images after 30 days",
	     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30},
	     "action": {"type": "expire"}}
	  ]
	}`))
	if err != nil {
		log.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	daysAgo := func(n int) time.Time { return now.AddDate(0, 0, -n) }
	images := []lifecycle.Image{
		{Digest: digest.FromString("1"), Tags: []string{"v1"}, PushedAt: daysAgo(90)},
		{Digest: digest.FromString("2"), Tags: []string{"v2"}, PushedAt: daysAgo(60)},
		{Digest: digest.FromString("3"), Tags: []string{"v3", "latest"}, PushedAt: daysAgo(10)},
		{Digest: digest.FromString("4"), PushedAt: daysAgo(31)},
		{Digest: digest.FromString("5"), PushedAt: daysAgo(3)},
	}
	for _, d := range lifecycle.Evaluate(policy, images, now) {
		fmt.Printf("%v %s: %s\n", d.Tags, d.Action, d.Reason)
	}
	// Output:
	// [v1] expire: rule 1: tag pattern "v*" and 3rd newest of 3 (> 2)
	// [v2] keep: rule 1: tag pattern "v*" but 2nd newest of 3 (<= 2)
	// [v3 latest] keep: rule 1: tag pattern "v*" but 1st newest of 3 (<= 2)
	// [] expire: rule 2: untagged and pushed 31 days ago (> 30)
	// [] keep: rule 2: untagged but pushed 3 days ago (<= 30)
}

// Wiring a registry server: the runner expires images through the store
// in the background, and the handler serves the lifecycle-policy routes
// in front of the registry's own handler.
func ExampleNewHandler() {
	ctx := context.Background()
	store, err := storage.Open(ctx, "mem://", memmeta.New(), &storage.Options{DisableEncryption: true})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	meta, err := store.Registry()
	if err != nil {
		log.Fatal(err)
	}
	runner, err := lifecycle.NewRunner(meta, store, &lifecycle.Options{Interval: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	authorize := func(r *http.Request, repo string, write bool) error {
		return nil // the server's authorizer: may the caller read (or, if write, change) repo's policy?
	}
	h, err := lifecycle.NewHandler(runner, authorize, nil)
	if err != nil {
		log.Fatal(err)
	}
	var registryHandler http.Handler = http.NotFoundHandler() // registry.New(store, authz, opts)
	srv := &http.Server{Addr: "127.0.0.1:5000", Handler: h.Wrap(registryHandler)}
	_ = srv // srv.ListenAndServeTLS(…)

	runCtx, stop := context.WithCancel(ctx)
	go runner.Run(runCtx) // returns when runCtx ends
	stop()
}

// A one-off dry run over every repository with a policy.
func ExampleRunner_RunOnce() {
	ctx := context.Background()
	meta := memmeta.New()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	_ = meta.CreateRepository(ctx, &driver.Repository{Name: "team/app", Visibility: driver.Private, CreatedAt: now, UpdatedAt: now})
	for i, age := range []int{40, 20} {
		_, _ = meta.PutManifest(ctx, &driver.Manifest{Repository: "team/app", Digest: digest.FromString(fmt.Sprint(i)), MediaType: "application/vnd.oci.image.manifest.v1+json", PushedAt: now.AddDate(0, 0, -age)})
	}
	_ = meta.PutPolicy(ctx, &driver.Policy{Repository: "team/app", Document: []byte(
		`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}`)})

	runner, err := lifecycle.NewRunner(meta, nil, &lifecycle.Options{DryRun: true, Clock: fixedClock{now}})
	if err != nil {
		log.Fatal(err)
	}
	report, err := runner.RunOnce(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, rr := range report.Repositories {
		for _, d := range rr.Expired {
			fmt.Printf("%s would expire %s: %s\n", rr.Repository, d.Digest.Encoded()[:12], d.Reason)
		}
	}
	// Output:
	// team/app would expire 5feceb66ffc8: rule 1: untagged and pushed 40 days ago (> 30)
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                         { return c.t }
func (c fixedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
