package lifecycle_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/lifecycle"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/opencontainers/go-digest"
)

// fakeClock is a manual clock: After fires when Advance passes its time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	waiting chan struct{} // receives when a waiter is added
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(t time.Time) *fakeClock {
	return &fakeClock{now: t, waiting: make(chan struct{}, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	select {
	case c.waiting <- struct{}{}:
	default:
	}
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// backend is a complete metadata backend: memmeta or sqlmeta.
type backend interface {
	driver.Metadata
	driver.Registry
}

type fixture struct {
	t     *testing.T
	ctx   context.Context
	meta  backend
	store *storage.Store
	clock *fakeClock
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, memmeta.New()) }

func newFixtureWith(t *testing.T, meta backend) *fixture {
	t.Helper()
	ctx := context.Background()
	clock := newFakeClock(t0)
	s, err := storage.Open(ctx, "mem://", meta, &storage.Options{DisableEncryption: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &fixture{t: t, ctx: ctx, meta: meta, store: s, clock: clock}
}

func (f *fixture) repo(name string) {
	f.t.Helper()
	if err := f.meta.CreateRepository(f.ctx, &driver.Repository{Name: name, Visibility: driver.Private, CreatedAt: t0, UpdatedAt: t0}); err != nil {
		f.t.Fatal(err)
	}
}

// push records a manifest directly through the driver, age before now.
func (f *fixture) push(repo, name string, age time.Duration, tags []string, mod func(*driver.Manifest)) digest.Digest {
	f.t.Helper()
	d := digest.FromString(repo + "/" + name)
	m := &driver.Manifest{Repository: repo, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 100, PushedAt: f.clock.Now().Add(-age)}
	if mod != nil {
		mod(m)
	}
	if _, err := f.meta.PutManifest(f.ctx, m); err != nil {
		f.t.Fatal(err)
	}
	for _, tag := range tags {
		if _, err := f.meta.SetTag(f.ctx, &driver.Tag{Repository: repo, Name: tag, Digest: d, UpdatedAt: m.PushedAt, UpdatedBy: "test"}); err != nil {
			f.t.Fatal(err)
		}
	}
	return d
}

func (f *fixture) policy(repo, doc string) {
	f.t.Helper()
	if err := f.meta.PutPolicy(f.ctx, &driver.Policy{Repository: repo, Document: []byte(doc), UpdatedAt: t0}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) exists(repo string, d digest.Digest) bool {
	_, err := f.meta.GetManifest(f.ctx, repo, d)
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		f.t.Fatal(err)
	}
	return err == nil
}

func (f *fixture) events(typ string) []driver.Event {
	f.t.Helper()
	evs, err := f.meta.ClaimEvents(f.ctx, f.clock.Now(), time.Hour, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []driver.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, *e)
		}
	}
	return out
}

const untaggedPolicy = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`

const day = 24 * time.Hour

func TestRunnerExpires(t *testing.T) { testRunnerExpires(t, newFixture(t)) }

// The same against the SQL backend (embedded SQLite).
func TestRunnerExpiresSQLite(t *testing.T) {
	meta, err := sqlmeta.Open(context.Background(), "sqlite://:memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	testRunnerExpires(t, newFixtureWith(t, meta))
}

func testRunnerExpires(t *testing.T, f *fixture) {
	f.repo("team/app")
	f.repo("team/other")
	old := f.push("team/app", "old", 30*day, nil, nil)
	young := f.push("team/app", "young", 2*day, nil, nil)
	tagged := f.push("team/app", "tagged", 30*day, []string{"v1"}, nil)
	sig := f.push("team/app", "sig", 30*day, nil, func(m *driver.Manifest) {
		m.Subject = old
		m.ArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json"
	})
	child := f.push("team/app", "child", 30*day, nil, nil)
	idx := f.push("team/app", "idx", 30*day, nil, func(m *driver.Manifest) {
		m.MediaType = "application/vnd.oci.image.index.v1+json"
		m.Children = []digest.Digest{child}
	})
	recent := f.push("team/app", "recent", 10*time.Minute, nil, func(m *driver.Manifest) { m.Subject = digest.Digest("sha256:" + strings.Repeat("0", 64)) })
	otherOld := f.push("team/other", "old", 30*day, nil, nil)
	f.policy("team/app", untaggedPolicy)

	r, err := lifecycle.NewRunner(f.meta, f.store, &lifecycle.Options{Logger: quiet, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.RunOnce(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rep.Repositories) != 1 || rep.Repositories[0].Repository != "team/app" {
		t.Fatalf("repositories = %+v", rep.Repositories)
	}
	var got []digest.Digest
	for _, d := range rep.Repositories[0].Expired {
		got = append(got, d.Digest)
	}
	// Indexes before children, subjects before referrers, older first.
	want := []digest.Digest{old, idx, child, sig}
	slices.SortFunc(want[:2], func(a, b digest.Digest) int { return strings.Compare(string(a), string(b)) })
	slices.SortFunc(want[2:], func(a, b digest.Digest) int { return strings.Compare(string(a), string(b)) })
	if !slices.Equal(got, want) {
		t.Errorf("expired %v, want %v", got, want)
	}
	for _, d := range want {
		if f.exists("team/app", d) {
			t.Errorf("%s still exists", d)
		}
	}
	for _, d := range []digest.Digest{young, tagged, recent} {
		if !f.exists("team/app", d) {
			t.Errorf("%s was expired", d)
		}
	}
	if !f.exists("team/other", otherOld) {
		t.Error("a repository without a policy lost an image")
	}
	evs := f.events(lifecycle.EventImageExpired)
	if len(evs) != 4 {
		t.Fatalf("%d expired events, want 4", len(evs))
	}
	var data struct {
		Repository string
		Digest     digest.Digest
		Rule       int
		Reason, By string
	}
	if err := json.Unmarshal(evs[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Repository != "team/app" || data.Digest != want[0] || data.By != "lifecycle" || data.Rule != 1 || !strings.Contains(data.Reason, "pushed 30 days ago (> 7)") {
		t.Errorf("event data %+v", data)
	}
	if evs[0].Subject != "team/app@"+string(want[0]) || !evs[0].CreatedAt.Equal(t0) {
		t.Errorf("event %+v", evs[0])
	}

	// A second run has nothing left to do.
	rep, err = r.RunOnce(f.ctx)
	if err != nil || rep.Expired() != 0 {
		t.Fatalf("second run expired %d, err %v", rep.Expired(), err)
	}
}

func TestRunnerDryRunAndPreview(t *testing.T) {
	f := newFixture(t)
	f.repo("team/app")
	old := f.push("team/app", "old", 30*day, nil, nil)
	f.policy("team/app", untaggedPolicy)
	r, err := lifecycle.NewRunner(f.meta, nil, &lifecycle.Options{Logger: quiet, Clock: f.clock, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.RunOnce(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || rep.Expired() != 1 || rep.Repositories[0].Expired[0].Digest != old {
		t.Fatalf("dry run report %+v", rep.Repositories[0])
	}
	if !f.exists("team/app", old) {
		t.Fatal("dry run expired an image")
	}
	if evs := f.events(lifecycle.EventImageExpired); len(evs) != 0 {
		t.Fatalf("dry run emitted %d events", len(evs))
	}

	pr, err := r.Preview(f.ctx, "team/app", nil)
	if err != nil || len(pr.Expired) != 1 {
		t.Fatalf("preview %+v, %v", pr, err)
	}
	p, _ := lifecycle.Parse([]byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":60},"action":{"type":"expire"}}]}`))
	if pr, err = r.Preview(f.ctx, "team/app", p); err != nil || len(pr.Expired) != 0 {
		t.Fatalf("preview of another policy %+v, %v", pr, err)
	}
	if _, err := r.Preview(f.ctx, "team/none", nil); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("preview of a missing repository: %v", err)
	}
}

func TestRunnerRegistryPolicy(t *testing.T) {
	f := newFixture(t)
	for _, repo := range []string{"team-a/web", "team-b/api", "team-a/own"} {
		f.repo(repo)
		f.push(repo, "old", 30*day, nil, nil)
	}
	f.policy("team-a/own", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":90},"action":{"type":"expire"}}]}`)
	rp, err := lifecycle.Parse([]byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","repositoryPatternList":["team-a/*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := lifecycle.NewRunner(f.meta, f.store, &lifecycle.Options{Logger: quiet, Clock: f.clock, RegistryPolicy: rp})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.RunOnce(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, rr := range rep.Repositories {
		got[rr.Repository] = len(rr.Expired)
	}
	want := map[string]int{"team-a/own": 0, "team-a/web": 1, "team-b/api": 0}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: expired %d, want %d", k, got[k], v)
		}
	}
}

func TestRunnerInvalidStoredPolicy(t *testing.T) {
	f := newFixture(t)
	f.repo("a")
	f.repo("b")
	f.push("b", "old", 30*day, nil, nil)
	f.policy("a", `{"rules":[{"rulePriority":1}]}`)
	f.policy("b", untaggedPolicy)
	r, _ := lifecycle.NewRunner(f.meta, f.store, &lifecycle.Options{Logger: quiet, Clock: f.clock})
	rep, err := r.RunOnce(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Repositories) != 2 || len(rep.Repositories[0].Errors) != 1 || rep.Repositories[1].Repository != "b" || len(rep.Repositories[1].Expired) != 1 {
		t.Fatalf("report %+v %+v", rep.Repositories[0], rep.Repositories[1])
	}
	if !strings.Contains(rep.Err().Error(), "rules[0].selection: required") {
		t.Errorf("error %v", rep.Err())
	}
}

func TestRunnerSkipsChangedImages(t *testing.T) {
	f := newFixture(t)
	f.repo("r")
	a := f.push("r", "a", 30*day, nil, nil)
	b := f.push("r", "b", 31*day, nil, nil)
	c := f.push("r", "c", 32*day, nil, nil)
	f.policy("r", untaggedPolicy)
	// The first deletion (c, the oldest) tags b and pulls a meanwhile.
	exp := &hookExpirer{Store: f.store, hook: func() {
		f.meta.SetTag(f.ctx, &driver.Tag{Repository: "r", Name: "v1", Digest: b, UpdatedAt: t0})
		f.meta.MarkPulled(f.ctx, "r", a, t0)
	}}
	r, _ := lifecycle.NewRunner(f.meta, exp, &lifecycle.Options{Logger: quiet, Clock: f.clock})
	rep, err := r.RunOnce(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	rr := rep.Repositories[0]
	if len(rr.Expired) != 1 || rr.Expired[0].Digest != c || len(rr.Skipped) != 2 {
		t.Fatalf("expired %+v skipped %+v", rr.Expired, rr.Skipped)
	}
	if !strings.HasPrefix(rr.Skipped[0].Reason, "tags changed since evaluation (now v1)") || !strings.HasPrefix(rr.Skipped[1].Reason, "pulled since evaluation") {
		t.Errorf("skipped %+v", rr.Skipped)
	}
	if !f.exists("r", a) || !f.exists("r", b) {
		t.Error("a changed image was expired")
	}
}

type hookExpirer struct {
	*storage.Store
	hook func()
	once sync.Once
}

func (e *hookExpirer) DeleteManifest(ctx context.Context, repo string, d digest.Digest, by string, evs ...driver.Event) error {
	err := e.Store.DeleteManifest(ctx, repo, d, by, evs...)
	e.once.Do(e.hook)
	return err
}

func TestRunnerRunSchedule(t *testing.T) {
	f := newFixture(t)
	f.repo("r")
	f.policy("r", untaggedPolicy)
	reports := make(chan *lifecycle.Report, 10)
	r, _ := lifecycle.NewRunner(f.meta, f.store, &lifecycle.Options{
		Logger: quiet, Clock: f.clock, Interval: 6 * time.Hour,
		OnReport: func(rep *lifecycle.Report) { reports <- rep },
	})
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	first := <-reports
	if first.Expired() != 0 || !first.Started.Equal(t0) {
		t.Fatalf("first run %+v", first)
	}
	<-f.clock.waiting
	d := f.push("r", "x", 0, nil, nil) // pushed now: inside the grace period
	f.clock.Advance(6 * time.Hour)
	if rep := <-reports; rep.Expired() != 0 || !rep.Started.Equal(t0.Add(6*time.Hour)) {
		t.Fatalf("second run %+v", rep)
	}
	<-f.clock.waiting
	f.clock.Advance(8 * day)
	if rep := <-reports; rep.Expired() != 1 || f.exists("r", d) {
		t.Fatalf("third run expired %d", rep.Expired())
	}
	<-f.clock.waiting
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

func TestRunnerCancelled(t *testing.T) {
	f := newFixture(t)
	f.repo("r")
	f.push("r", "a", 30*day, nil, nil)
	f.policy("r", untaggedPolicy)
	r, _ := lifecycle.NewRunner(f.meta, f.store, &lifecycle.Options{Logger: quiet, Clock: f.clock})
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if _, err := r.RunOnce(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("RunOnce on a cancelled context: %v", err)
	}
	if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run on a cancelled context: %v", err)
	}
}

func TestNewRunnerOptions(t *testing.T) {
	meta := memmeta.New()
	if _, err := lifecycle.NewRunner(meta, nil, nil); err == nil {
		t.Error("no Expirer and no DryRun accepted")
	}
	if _, err := lifecycle.NewRunner(meta, nil, &lifecycle.Options{DryRun: true, Interval: -1}); err == nil {
		t.Error("negative interval accepted")
	}
	if _, err := lifecycle.NewRunner(meta, nil, &lifecycle.Options{DryRun: true, RegistryPolicy: &lifecycle.Policy{}}); err == nil {
		t.Error("invalid registry policy accepted")
	}
	o := &lifecycle.Options{DryRun: true}
	if !strings.Contains(o.String(), "DryRun: true") {
		t.Errorf("String() = %s", o)
	}
}

// failingExpirer fails for one digest and reports another already gone.
type failingExpirer struct {
	*storage.Store
	fail, gone digest.Digest
}

func (e failingExpirer) DeleteManifest(ctx context.Context, repo string, d digest.Digest, by string, evs ...driver.Event) error {
	switch d {
	case e.fail:
		return errors.New("backend unavailable")
	case e.gone:
		return driver.ErrNotFound
	}
	return e.Store.DeleteManifest(ctx, repo, d, by, evs...)
}

func TestRunnerDeletionFailures(t *testing.T) {
	f := newFixture(t)
	f.repo("r")
	a := f.push("r", "a", 30*day, nil, nil)
	b := f.push("r", "b", 31*day, nil, nil)
	c := f.push("r", "c", 32*day, nil, nil)
	f.policy("r", untaggedPolicy)
	r, _ := lifecycle.NewRunner(f.meta, failingExpirer{f.store, b, c}, &lifecycle.Options{Logger: quiet, Clock: f.clock})
	rep, err := r.RunOnce(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	rr := rep.Repositories[0]
	if len(rr.Expired) != 1 || rr.Expired[0].Digest != a {
		t.Errorf("expired %+v", rr.Expired)
	}
	if len(rr.Skipped) != 1 || rr.Skipped[0].Digest != c || !strings.HasPrefix(rr.Skipped[0].Reason, "already deleted") {
		t.Errorf("skipped %+v", rr.Skipped)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "backend unavailable") || !strings.Contains(err.Error(), string(b)) {
		t.Errorf("errors %v", err)
	}
	if evs := f.events(lifecycle.EventImageExpired); len(evs) != 1 {
		t.Errorf("%d events, want 1", len(evs))
	}
}

func TestRunnerSkipsReferrerWhoseSubjectArrives(t *testing.T) {
	f := newFixture(t)
	f.repo("r")
	subject := digest.FromString("subject")
	f.push("r", "old", 31*day, nil, nil)
	orphan := f.push("r", "sig", 30*day, nil, func(m *driver.Manifest) { m.Subject = subject })
	f.policy("r", untaggedPolicy)
	exp := &hookExpirer{Store: f.store, hook: func() {
		f.meta.PutManifest(f.ctx, &driver.Manifest{Repository: "r", Digest: subject, MediaType: "application/vnd.oci.image.manifest.v1+json", PushedAt: t0})
	}}
	r, _ := lifecycle.NewRunner(f.meta, exp, &lifecycle.Options{Logger: quiet, Clock: f.clock})
	rep, err := r.RunOnce(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	rr := rep.Repositories[0]
	if len(rr.Expired) != 1 || len(rr.Skipped) != 1 || rr.Skipped[0].Digest != orphan || !strings.HasPrefix(rr.Skipped[0].Reason, "its subject") {
		t.Fatalf("expired %+v skipped %+v", rr.Expired, rr.Skipped)
	}
	if !f.exists("r", orphan) {
		t.Error("the referrer was expired")
	}
}
