package scan_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/scantest"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/berth-dev/berth/storage/sqlmeta"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

// durableStore is what a durable pipeline runs over.
type durableStore interface {
	driver.Registry
	driver.ScanJobs
	As(any) bool
	Close() error
}

// forEachSQL runs test against SQLite (a file) and PostgreSQL, giving it
// a function that opens a new handle on the same database each call, as a
// restarted process or another node would.
func forEachSQL(t *testing.T, test func(t *testing.T, open func(t *testing.T) durableStore)) {
	t.Run("SQLite", func(t *testing.T) {
		url := "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "meta.db"))
		test(t, func(t *testing.T) durableStore { return openSQL(t, url) })
	})
	t.Run("Postgres", func(t *testing.T) {
		url := testsvc.Postgres(t)
		test(t, func(t *testing.T) durableStore { return openSQL(t, url) })
	})
}

func openSQL(t *testing.T, url string) durableStore {
	t.Helper()
	m, err := sqlmeta.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// jobCount counts the stored jobs without claiming them (a claim would
// take the job from the pipeline under test).
func jobCount(t *testing.T, m durableStore) int {
	t.Helper()
	var db *sql.DB
	if !m.As(&db) {
		t.Fatal("no *sql.DB")
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM scan_jobs").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDurableJobsSurviveRestart: a job queued by a pipeline that stops
// before running it is stored in the database, and a new pipeline on a
// new handle of the same database runs it and removes it.
func TestDurableJobsSurviveRestart(t *testing.T) {
	forEachSQL(t, func(t *testing.T, open func(t *testing.T) durableStore) {
		ctx := context.Background()
		src := &source{images: map[v1.Hash]v1.Image{}}
		fs := scantest.NewScanner(scan.Info{Name: "fake"})
		d := addImage(t, src, fs, "CVE-1")

		m1 := open(t)
		p1, err := scan.NewPipeline(fs, src, m1, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p1.OnPush("team/app", d) // buffered, never started: Close stores it
		if err := p1.Close(); err != nil {
			t.Fatal(err)
		}
		m1.Close()

		m2 := open(t)
		p2, err := scan.NewPipeline(fs, src, m2, nil, &scan.PipelineOptions{PollInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		p2.Start(ctx)
		defer p2.Close()
		waitFor(t, "the restarted pipeline's report", func() bool {
			r, _ := p2.Report(ctx, d)
			return r.Status == scan.StatusSucceeded
		})
		if fs.Calls() != 1 {
			t.Errorf("scanned %d times, want 1", fs.Calls())
		}
		waitFor(t, "the job's removal", func() bool { return jobCount(t, m2) == 0 })
		// The report came with its event, in the outbox.
		evs, err := m2.ClaimEvents(ctx, time.Now(), time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		var found *scan.CompletedEvent
		for _, e := range evs {
			if e.Type == scan.EventScanCompleted && e.Subject == "team/app@"+d.String() {
				found = &scan.CompletedEvent{}
				if err := json.Unmarshal(e.Data, found); err != nil {
					t.Fatal(err)
				}
			}
		}
		if found == nil || found.Status != scan.StatusSucceeded || found.Summary.Critical != 1 || found.Digest != d.String() || found.Repository != "team/app" {
			t.Errorf("scan-completed event = %+v", found)
		}
	})
}

// TestDurableLeaseExpiry: a job claimed by a node that crashed is run by
// another node once the lease expires, and the crashed attempt counts.
func TestDurableLeaseExpiry(t *testing.T) {
	forEachSQL(t, func(t *testing.T, open func(t *testing.T) durableStore) {
		ctx := context.Background()
		src := &source{images: map[v1.Hash]v1.Image{}}
		fs := scantest.NewScanner(scan.Info{Name: "fake"})
		d := addImage(t, src, fs, "CVE-1")
		crashed := open(t)
		now := time.Now().UTC()
		if _, err := crashed.EnqueueScanJob(ctx, &driver.ScanJob{Repository: "team/app", Digest: digest.Digest(d.String()), NextAttemptAt: now, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		js, err := crashed.ClaimScanJobs(ctx, now, 300*time.Millisecond, 1)
		if err != nil || len(js) != 1 {
			t.Fatalf("claim by the crashing node: %v, %v", js, err)
		}
		crashed.Close() // the node dies holding the lease

		m := open(t)
		p, err := scan.NewPipeline(fs, src, m, nil, &scan.PipelineOptions{PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		p.Start(ctx)
		defer p.Close()
		waitFor(t, "the report after the lease expired", func() bool {
			r, _ := p.Report(ctx, d)
			return r.Status == scan.StatusSucceeded
		})
		if el := time.Since(start); el < 200*time.Millisecond {
			t.Errorf("the job ran %v after start, before the crashed node's lease expired", el)
		}
	})
}

// TestDurableNodesScanOnce: two pipelines (nodes) on one database scan
// each of many pushed images exactly once between them.
func TestDurableNodesScanOnce(t *testing.T) {
	forEachSQL(t, func(t *testing.T, open func(t *testing.T) durableStore) {
		ctx := context.Background()
		src := &source{images: map[v1.Hash]v1.Image{}}
		fs := scantest.NewScanner(scan.Info{Name: "fake"})
		var ds []v1.Hash
		for i := range 20 {
			ds = append(ds, addImage(t, src, fs, "CVE-"+string(rune('A'+i))))
		}
		var ps []*scan.Pipeline
		for range 2 {
			p, err := scan.NewPipeline(fs, src, open(t), nil, &scan.PipelineOptions{PollInterval: 10 * time.Millisecond, Workers: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ps = append(ps, p)
		}
		// Every digest queued through both nodes (pushed to two
		// repositories) before they run: one job each.
		for i, d := range ds {
			if err := ps[i%2].Rescan(ctx, "team/app", d); err != nil {
				t.Fatal(err)
			}
			if err := ps[(i+1)%2].Rescan(ctx, "other/app", d); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range ps {
			p.Start(ctx)
		}
		waitFor(t, "every report", func() bool {
			for _, d := range ds {
				if r, _ := ps[0].Report(ctx, d); r.Status != scan.StatusSucceeded {
					return false
				}
			}
			return true
		})
		time.Sleep(50 * time.Millisecond)
		if fs.Calls() != len(ds) {
			t.Errorf("%d scans for %d images, want one each", fs.Calls(), len(ds))
		}
	})
}

// TestDurableRetryThenFail: failed attempts are retried from the
// database with backoff and end in a Failed report and no job.
func TestDurableRetryThenFail(t *testing.T) {
	forEachSQL(t, func(t *testing.T, open func(t *testing.T) durableStore) {
		ctx := context.Background()
		src := &source{images: map[v1.Hash]v1.Image{}}
		fs := scantest.NewScanner(scan.Info{Name: "fake"})
		d := addImage(t, src, fs, "CVE-1")
		src.fail.Store(1000)
		m := open(t)
		p, err := scan.NewPipeline(fs, src, m, nil, &scan.PipelineOptions{Backoff: 5 * time.Millisecond, MaxAttempts: 3, PollInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		p.Start(ctx)
		defer p.Close()
		if err := p.Rescan(ctx, "team/app", d); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the failed report", func() bool {
			r, _ := p.Report(ctx, d)
			return r.Status == scan.StatusFailed
		})
		if r, _ := p.Report(ctx, d); r.Reason != "transient" {
			t.Errorf("failed report reason = %q", r.Reason)
		}
		if n := 1000 - src.fail.Load(); n != 3 {
			t.Errorf("%d attempts, want MaxAttempts = 3", n)
		}
		waitFor(t, "the job's removal", func() bool { return jobCount(t, m) == 0 })
	})
}

func TestDurableDetection(t *testing.T) {
	fs := scantest.NewScanner(scan.Info{Name: "fake"})
	src := &source{images: map[v1.Hash]v1.Image{}}
	meta := memmeta.New()
	for _, tc := range []struct {
		results driver.ScanResults
		opts    *scan.PipelineOptions
		want    bool
	}{
		{meta, nil, true},
		{resultsOnly{meta}, nil, false},
		{meta, &scan.PipelineOptions{Jobs: scantest.NewJobs()}, false},
	} {
		p, err := scan.NewPipeline(fs, src, tc.results, nil, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if p.Durable() != tc.want {
			t.Errorf("NewPipeline(%T, %+v).Durable() = %v", tc.results, tc.opts, !tc.want)
		}
		if o := p.Options(); o.Lease != 5*time.Minute || o.PollInterval != 2*time.Second || o.Workers != 2 {
			t.Errorf("effective options: %s", o.String())
		}
		p.Close()
	}
}

// TestEventType: the pipeline writes the event type the events package
// publishes.
func TestEventType(t *testing.T) {
	if scan.EventScanCompleted != events.TypeScanCompleted {
		t.Errorf("scan.EventScanCompleted = %q, events.TypeScanCompleted = %q", scan.EventScanCompleted, events.TypeScanCompleted)
	}
}

// TestDurableGivesUpAfterCrashes: a job whose every attempt was claimed
// by a worker that never finished (a scanner crashing its node) is given
// up with a Failed report instead of looping.
func TestDurableGivesUpAfterCrashes(t *testing.T) {
	ctx := context.Background()
	src := &source{images: map[v1.Hash]v1.Image{}}
	fs := scantest.NewScanner(scan.Info{Name: "fake"})
	d := addImage(t, src, fs, "CVE-1")
	meta := memmeta.New()
	past := time.Now().UTC().Add(-time.Hour)
	if _, err := meta.EnqueueScanJob(ctx, &driver.ScanJob{Repository: "team/app", Digest: digest.Digest(d.String()), NextAttemptAt: past, CreatedAt: past}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // three crashed attempts, their leases long expired
		if js, err := meta.ClaimScanJobs(ctx, past.Add(time.Duration(i)*time.Minute), time.Second, 1); err != nil || len(js) != 1 {
			t.Fatalf("crashed claim %d: %v, %v", i, js, err)
		}
	}
	p, err := scan.NewPipeline(fs, src, meta, nil, &scan.PipelineOptions{MaxAttempts: 3, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.Start(ctx)
	defer p.Close()
	waitFor(t, "the failed report", func() bool {
		r, _ := p.Report(ctx, d)
		return r.Status == scan.StatusFailed
	})
	if fs.Calls() != 0 {
		t.Errorf("scanned %d times after MaxAttempts crashed attempts", fs.Calls())
	}
	if r, _ := p.Report(ctx, d); r.Reason != "scan attempts interrupted" {
		t.Errorf("reason %q", r.Reason)
	}
}
