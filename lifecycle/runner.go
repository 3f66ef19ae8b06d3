package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// EventImageExpired is the type of the event the runner emits for every
// image it expires, besides the manifest-deleted event that the store
// writes with the deletion itself.
const EventImageExpired = "dev.berth.image.expired"

// Event types the Handler writes to the outbox with policy changes.
const (
	EventPolicyUpdated = "dev.berth.lifecycle-policy.updated"
	EventPolicyDeleted = "dev.berth.lifecycle-policy.deleted"
)

// Defaults; see Options.
const (
	DefaultInterval = time.Hour
	DefaultGrace    = time.Hour
	DefaultActor    = "lifecycle"
	pageSize        = 500
)

// Metadata is what the runner and handler read and write: repositories,
// manifests, tags, references and policies. Every driver.Registry (and so
// the value *storage.Store.Registry returns) satisfies it.
type Metadata interface {
	driver.Repositories
	driver.Manifests
	driver.Tags
	driver.References
	driver.Policies
}

// Expirer deletes manifests. *storage.Store satisfies it; its
// DeleteManifest removes the manifest with its tags and writes a
// manifest-deleted event and the given events in the same transaction.
// An error matching driver.ErrNotFound means the manifest is already gone
// (and no event is written).
type Expirer interface {
	DeleteManifest(ctx context.Context, repo string, d digest.Digest, by string, events ...driver.Event) error
}

// Clock is the runner's time source and timer.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has passed, like
	// time.After.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configures a Runner. A nil *Options is the zero value, and the
// zero value of every field is safe.
type Options struct {
	// Clock supplies the time and the timers. Default: the system clock.
	Clock Clock
	// Interval is the time between runs of Run. Default 1 hour (ECR
	// expires images within 24 hours of their meeting a policy).
	Interval time.Duration
	// Next, when set, overrides Interval: Run sleeps until Next(now),
	// e.g. the next 03:00.
	Next func(now time.Time) time.Time
	// Grace protects recent pushes: a manifest pushed less than Grace ago
	// may still be part of a push in progress (an index's children arrive
	// before it) and is never expired. Default 1 hour; negative disables.
	Grace time.Duration
	// DryRun makes runs evaluate and report without expiring anything.
	DryRun bool
	// Actor names the runner in tag history and events. Default
	// "lifecycle".
	Actor string
	// RegistryPolicy, when set, applies to every repository without a
	// policy of its own (a repository's own policy replaces it). Its rules
	// may use repositoryPatternList to pick repositories.
	RegistryPolicy *Policy
	// OnReport, when set, receives the report of each run made by Run.
	OnReport func(*Report)
	// Logger receives a line per run and per failure. Default
	// slog.Default().
	Logger *slog.Logger
}

// String describes the effective configuration, for start-up logs.
func (o *Options) String() string {
	return fmt.Sprintf("lifecycle.Options{Interval: %v, Grace: %v, DryRun: %v, Actor: %q, RegistryPolicy: %v}",
		o.Interval, o.Grace, o.DryRun, o.Actor, o.RegistryPolicy != nil)
}

func (o *Options) validate() error {
	if o.Interval < 0 {
		return fmt.Errorf("lifecycle: Options.Interval %v is negative", o.Interval)
	}
	if o.RegistryPolicy != nil {
		if err := o.RegistryPolicy.Validate(); err != nil {
			return fmt.Errorf("lifecycle: Options.RegistryPolicy: %w", err)
		}
	}
	return nil
}

// Runner applies lifecycle policies: for each repository with a policy,
// it loads the images, evaluates the policy and expires what it decides.
type Runner struct {
	meta Metadata
	exp  Expirer
	opts Options
}

// NewRunner returns a runner reading meta and deleting through exp. exp
// may be nil only with Options.DryRun.
func NewRunner(meta Metadata, exp Expirer, opts *Options) (*Runner, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if meta == nil {
		return nil, errors.New("lifecycle: NewRunner needs Metadata")
	}
	if exp == nil && !o.DryRun {
		return nil, errors.New("lifecycle: NewRunner needs an Expirer unless DryRun is set")
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Actor == "" {
		o.Actor = DefaultActor
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Runner{meta: meta, exp: exp, opts: o}, nil
}

// Report says what a run did.
type Report struct {
	// Started and Finished bound the run; Started is the time every
	// policy was evaluated at.
	Started, Finished time.Time
	// DryRun is set when nothing was expired on purpose.
	DryRun bool
	// Repositories has one entry per repository with a policy, by name.
	Repositories []*RepositoryReport
}

// Expired returns how many images the run expired (or, in a dry run,
// would have).
func (r *Report) Expired() int {
	n := 0
	for _, rr := range r.Repositories {
		n += len(rr.Expired)
	}
	return n
}

// Err joins the errors of every repository, or returns nil.
func (r *Report) Err() error {
	var errs []error
	for _, rr := range r.Repositories {
		errs = append(errs, rr.Errors...)
	}
	return errors.Join(errs...)
}

// RepositoryReport says what a run did in one repository.
type RepositoryReport struct {
	// Repository is the repository's name.
	Repository string
	// EvaluatedAt is the time the policy was evaluated at.
	EvaluatedAt time.Time
	// RegistryPolicy is set when Options.RegistryPolicy applied.
	RegistryPolicy bool
	// Images are the manifests evaluated.
	Images []Image
	// Decisions are the verdicts on Images, in the same order.
	Decisions []Decision
	// Expired are the decisions applied, in the order applied (in a dry
	// run, those that would be).
	Expired []Decision
	// Skipped are expire decisions not applied because the image changed
	// after evaluation (a new tag, a pull, a new index listing it) or
	// was already gone; Reason says which.
	Skipped []Decision
	// Errors are the failures: an invalid stored policy, a listing or a
	// deletion that failed.
	Errors []error
}

// RunOnce evaluates every policy and applies the decisions (unless
// Options.DryRun). Failures in one repository are reported in the
// Report and do not stop the others; the error is non-nil only when the
// policies cannot be listed or ctx ends, in which case the report covers
// what was done so far.
func (r *Runner) RunOnce(ctx context.Context) (*Report, error) {
	now := r.opts.Clock.Now()
	rep := &Report{Started: now, DryRun: r.opts.DryRun}
	defer func() { rep.Finished = r.opts.Clock.Now() }()
	targets, err := r.targets(ctx)
	if err != nil {
		return rep, err
	}
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rr := &RepositoryReport{Repository: t.repo, RegistryPolicy: t.registry}
		rep.Repositories = append(rep.Repositories, rr)
		if t.err != nil {
			rr.Errors = append(rr.Errors, t.err)
			r.opts.Logger.Warn("lifecycle: skipping repository with an invalid policy", "repository", t.repo, "error", t.err)
			continue
		}
		if err := r.evaluate(ctx, rr, t.policy, now); err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			if !errors.Is(err, driver.ErrNotFound) { // else deleted meanwhile
				rr.Errors = append(rr.Errors, err)
			}
			continue
		}
		if !r.opts.DryRun {
			if err := r.apply(ctx, rr, now); err != nil {
				return rep, err
			}
		} else {
			for _, i := range expiryOrder(rr.Images, rr.Decisions) {
				rr.Expired = append(rr.Expired, rr.Decisions[i])
			}
		}
	}
	return rep, nil
}

// Run calls RunOnce now and then every Interval (or at Options.Next)
// until ctx ends, and returns ctx's error. Reports go to
// Options.OnReport and the logger.
func (r *Runner) Run(ctx context.Context) error {
	for {
		rep, err := r.RunOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			r.opts.Logger.Error("lifecycle: run failed", "error", err)
		} else {
			r.opts.Logger.Info("lifecycle: run finished", "repositories", len(rep.Repositories), "expired", rep.Expired(), "dryRun", rep.DryRun, "errors", rep.Err())
		}
		if r.opts.OnReport != nil {
			r.opts.OnReport(rep)
		}
		now := r.opts.Clock.Now()
		wait := r.opts.Interval
		if r.opts.Next != nil {
			wait = max(r.opts.Next(now).Sub(now), 0)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.opts.Clock.After(wait):
		}
	}
}

// Preview evaluates p (or, when p is nil, the repository's policy) on
// repo's images now, without applying anything: the dry run of one
// repository. Report.Expired lists what would expire, in order. An error
// matching driver.ErrNotFound means the repository does not exist or,
// with a nil p, has no policy.
func (r *Runner) Preview(ctx context.Context, repo string, p *Policy) (*RepositoryReport, error) {
	rr := &RepositoryReport{Repository: repo}
	if p == nil {
		var err error
		p, rr.RegistryPolicy, err = r.policyOf(ctx, repo)
		if err != nil {
			return nil, err
		}
	} else if _, err := r.meta.GetRepository(ctx, repo); err != nil {
		return nil, fmt.Errorf("lifecycle: repository %s: %w", repo, err)
	}
	if err := r.evaluate(ctx, rr, p, r.opts.Clock.Now()); err != nil {
		return nil, err
	}
	for _, i := range expiryOrder(rr.Images, rr.Decisions) {
		rr.Expired = append(rr.Expired, rr.Decisions[i])
	}
	return rr, nil
}

// policyOf returns the policy that applies to repo.
func (r *Runner) policyOf(ctx context.Context, repo string) (*Policy, bool, error) {
	if _, err := r.meta.GetRepository(ctx, repo); err != nil {
		return nil, false, fmt.Errorf("lifecycle: repository %s: %w", repo, err)
	}
	sp, err := r.meta.GetPolicy(ctx, repo)
	if errors.Is(err, driver.ErrNotFound) && r.opts.RegistryPolicy != nil {
		return r.opts.RegistryPolicy, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("lifecycle: policy of %s: %w", repo, err)
	}
	p, err := Parse(sp.Document)
	if err != nil {
		return nil, false, fmt.Errorf("lifecycle: stored policy of %s: %w", repo, err)
	}
	return p, false, nil
}

type target struct {
	repo     string
	policy   *Policy
	registry bool
	err      error
}

// targets lists the repositories to evaluate, by name.
func (r *Runner) targets(ctx context.Context) ([]target, error) {
	var out []target
	own := map[string]bool{}
	after := ""
	for {
		page, more, err := r.meta.ListPolicies(ctx, after, pageSize)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: list policies: %w", err)
		}
		for _, sp := range page {
			own[sp.Repository] = true
			p, err := Parse(sp.Document)
			if err != nil {
				err = fmt.Errorf("lifecycle: stored policy of %s: %w", sp.Repository, err)
			}
			out = append(out, target{repo: sp.Repository, policy: p, err: err})
			after = sp.Repository
		}
		if !more || len(page) == 0 {
			break
		}
	}
	if r.opts.RegistryPolicy != nil {
		after = ""
		for {
			page, more, err := r.meta.ListRepositories(ctx, after, pageSize)
			if err != nil {
				return nil, fmt.Errorf("lifecycle: list repositories: %w", err)
			}
			for _, repo := range page {
				if !own[repo.Name] {
					out = append(out, target{repo: repo.Name, policy: r.opts.RegistryPolicy, registry: true})
				}
				after = repo.Name
			}
			if !more || len(page) == 0 {
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].repo < out[j].repo })
	return out, nil
}

// evaluate loads repo's images and fills rr.Images and rr.Decisions.
func (r *Runner) evaluate(ctx context.Context, rr *RepositoryReport, p *Policy, now time.Time) error {
	images, err := r.loadImages(ctx, rr.Repository, now)
	if err != nil {
		return err
	}
	rr.Images = images
	rr.EvaluatedAt = now
	rr.Decisions = Evaluate(p, images, now)
	return nil
}

// loadImages reads every manifest of repo with its tags. Parents are
// derived from the indexes' Children, which is what ListParents answers,
// without a query per manifest.
func (r *Runner) loadImages(ctx context.Context, repo string, now time.Time) ([]Image, error) {
	var images []Image
	var after digest.Digest
	for {
		page, more, err := r.meta.ListManifests(ctx, repo, after, pageSize)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: list manifests of %s: %w", repo, err)
		}
		for _, m := range page {
			tags, err := r.meta.TagsOf(ctx, repo, m.Digest)
			if err != nil {
				return nil, fmt.Errorf("lifecycle: tags of %s@%s: %w", repo, m.Digest, err)
			}
			images = append(images, Image{
				Repository: repo, Digest: m.Digest, Tags: tags,
				MediaType: m.MediaType, ArtifactType: m.ArtifactType,
				PushedAt: m.PushedAt, LastPulledAt: m.LastPulledAt,
				Subject: m.Subject, Children: slices.Clone(m.Children),
				Pushing: r.opts.Grace > 0 && now.Sub(m.PushedAt) < r.opts.Grace,
			})
			after = m.Digest
		}
		if !more || len(page) == 0 {
			break
		}
	}
	byDigest := make(map[digest.Digest]int, len(images))
	for i := range images {
		byDigest[images[i].Digest] = i
	}
	for i := range images {
		for _, c := range images[i].Children {
			if j, ok := byDigest[c]; ok && !slices.Contains(images[j].Parents, images[i].Digest) {
				images[j].Parents = append(images[j].Parents, images[i].Digest)
			}
		}
	}
	return images, nil
}

// apply expires rr's expiring images in order, each after checking that
// it has not changed since it was evaluated.
func (r *Runner) apply(ctx context.Context, rr *RepositoryReport, now time.Time) error {
	done := map[digest.Digest]bool{}
	for _, i := range expiryOrder(rr.Images, rr.Decisions) {
		if err := ctx.Err(); err != nil {
			return err
		}
		img, d := &rr.Images[i], rr.Decisions[i]
		if done[img.Digest] {
			continue
		}
		done[img.Digest] = true
		if why, err := r.changed(ctx, img); err != nil {
			rr.Errors = append(rr.Errors, err)
			continue
		} else if why != "" {
			d.Reason = why + "; was: " + d.Reason
			rr.Skipped = append(rr.Skipped, d)
			continue
		}
		// The image-expired event is written in the delete's transaction:
		// an expiry is recorded if and only if it happened.
		data, _ := json.Marshal(map[string]any{
			"repository": rr.Repository, "digest": img.Digest, "tags": nonNil(img.Tags),
			"mediaType": img.MediaType, "rule": d.Rule, "reason": d.Reason, "by": r.opts.Actor,
		})
		ev := driver.Event{Type: EventImageExpired, Subject: rr.Repository + "@" + string(img.Digest), Data: data, CreatedAt: r.opts.Clock.Now().UTC()}
		err := r.exp.DeleteManifest(ctx, rr.Repository, img.Digest, r.opts.Actor, ev)
		if errors.Is(err, driver.ErrNotFound) {
			d.Reason = "already deleted; was: " + d.Reason
			rr.Skipped = append(rr.Skipped, d)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rr.Errors = append(rr.Errors, fmt.Errorf("lifecycle: expire %s@%s: %w", rr.Repository, img.Digest, err))
			r.opts.Logger.Error("lifecycle: expire failed", "repository", rr.Repository, "digest", img.Digest, "error", err)
			continue
		}
		rr.Expired = append(rr.Expired, d)
		r.opts.Logger.Info("lifecycle: image expired", "repository", rr.Repository, "digest", img.Digest, "tags", img.Tags, "rule", d.Rule, "reason", d.Reason)
	}
	return nil
}

// changed re-reads an image just before it is expired and says why it
// must be left alone, or "" to go ahead: a tag was added or moved, it was
// pulled, its subject is present, or an index still lists it (indexes
// and subjects are expired before what depends on them, so one still
// present is kept, new, or failed to expire).
func (r *Runner) changed(ctx context.Context, img *Image) (string, error) {
	m, err := r.meta.GetManifest(ctx, img.Repository, img.Digest)
	if errors.Is(err, driver.ErrNotFound) {
		return "already deleted", nil
	}
	if err != nil {
		return "", fmt.Errorf("lifecycle: re-read %s@%s: %w", img.Repository, img.Digest, err)
	}
	if m.LastPulledAt.After(img.LastPulledAt) {
		return "pulled since evaluation", nil
	}
	tags, err := r.meta.TagsOf(ctx, img.Repository, img.Digest)
	if err != nil {
		return "", fmt.Errorf("lifecycle: re-read tags of %s@%s: %w", img.Repository, img.Digest, err)
	}
	if !slices.Equal(sortedCopy(tags), sortedCopy(img.Tags)) {
		return fmt.Sprintf("tags changed since evaluation (now %s)", strings.Join(tags, ", ")), nil
	}
	if img.Subject != "" {
		// Subjects are expired before their referrers, so a subject
		// still present is kept, or was pushed after evaluation.
		if _, err := r.meta.GetManifest(ctx, img.Repository, img.Subject); err == nil {
			return fmt.Sprintf("its subject %s is in the repository", short(img.Subject)), nil
		} else if !errors.Is(err, driver.ErrNotFound) {
			return "", fmt.Errorf("lifecycle: re-read subject of %s@%s: %w", img.Repository, img.Digest, err)
		}
	}
	parents, _, err := r.meta.ListParents(ctx, img.Repository, img.Digest, "", 1)
	if err != nil {
		return "", fmt.Errorf("lifecycle: re-read parents of %s@%s: %w", img.Repository, img.Digest, err)
	}
	if len(parents) > 0 {
		return fmt.Sprintf("still listed by index %s", short(parents[0])), nil
	}
	return "", nil
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
